"""Flag rules (INSTRUMENT.md sections 4 and 6): answers in, derived values and flags out.

Pure: imports no ORM, request or settings module; thresholds are passed in.
"""

from dataclasses import dataclass, field

SEVERITY_ORDER = {"review": 0, "caution": 1, "info": 2}


@dataclass(frozen=True)
class Flag:
    rule_id: str
    severity: str
    urgent: bool
    message: str
    basis: tuple = ()
    evidence: tuple = field(default=())


def evaluate(answers, *, now, thresholds=None):
    """Return the flags raised by ``answers`` at ``now``, urgent first, then by severity."""
    raise NotImplementedError("RULES: being written")
