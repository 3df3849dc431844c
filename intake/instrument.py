"""Instrument v1 as data: every step and question of INSTRUMENT.md, and the answer codec.

This is the one definition the wizard forms, review page, PDF, FHIR export and
rules read. Pure: no ORM, request or settings.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

INSTRUMENT_VERSION = "1.0"
QUESTIONNAIRE_URL = "https://intake.example.org/fhir/Questionnaire/ketamine-intake"

# Question types (INSTRUMENT.md 2.1).
YNU = "ynu"
YN = "yn"
SINGLE = "single"
MULTI = "multi"
SCALE = "scale"
INT = "int"
DECIMAL = "decimal"
DATE = "date"
DATETIME = "datetime"
TEXT = "text"
BOOL = "bool"
MED_LIST = "med_list"

EXCLUSIVE_KEYS = frozenset({"none", "unsure", "not_done", "negative"})


# ---------------------------------------------------------------------------
# Conditions ("shown when", INSTRUMENT.md 2.6). Each is callable with
# (answers, thresholds) and serialises to JSON for the browser and FHIR, with
# threshold names resolved to the values in force.


def _resolve(value, thresholds):
    if isinstance(value, str):
        return thresholds[value]
    return value


class Condition:
    """Base class of the small condition language used by "shown when"."""

    def __call__(self, answers, thresholds):
        raise NotImplementedError

    def codes(self):
        """Return the question codes this condition reads."""
        raise NotImplementedError

    def to_json(self, thresholds):
        raise NotImplementedError


@dataclass(frozen=True)
class Eq(Condition):
    code: str
    value: Any

    def __call__(self, answers, thresholds):
        return self.code in answers and answers[self.code] == self.value

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {"op": "in", "code": self.code, "values": [self.value]}


@dataclass(frozen=True)
class In(Condition):
    code: str
    values: tuple

    def __call__(self, answers, thresholds):
        return self.code in answers and answers[self.code] in self.values

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {"op": "in", "code": self.code, "values": list(self.values)}


@dataclass(frozen=True)
class IncludesAny(Condition):
    """``x includes k`` / ``x includes any of (a, b)`` for multi questions."""

    code: str
    keys: tuple

    def __call__(self, answers, thresholds):
        selected = answers.get(self.code)
        return bool(selected) and any(key in selected for key in self.keys)

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {"op": "includes_any", "code": self.code, "values": list(self.keys)}


def Includes(code, key):  # noqa: N802 - reads like the spec's notation
    """Return the condition ``code includes key``."""
    return IncludesAny(code, (key,))


_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Compare(Condition):
    """``x > n`` where n is a number or a threshold name."""

    code: str
    op: str
    value: Any

    def __call__(self, answers, thresholds):
        if self.code not in answers:
            return False
        return _OPS[self.op](answers[self.code], _resolve(self.value, thresholds))

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {
            "op": "compare",
            "code": self.code,
            "cmp": self.op,
            "value": float(_resolve(self.value, thresholds)),
        }


@dataclass(frozen=True)
class Not(Condition):
    condition: Condition

    def __call__(self, answers, thresholds):
        return not self.condition(answers, thresholds)

    def codes(self):
        return self.condition.codes()

    def to_json(self, thresholds):
        return {"op": "not", "arg": self.condition.to_json(thresholds)}


@dataclass(frozen=True)
class AnyOf(Condition):
    conditions: tuple

    def __call__(self, answers, thresholds):
        return any(condition(answers, thresholds) for condition in self.conditions)

    def codes(self):
        return set().union(*(condition.codes() for condition in self.conditions))

    def to_json(self, thresholds):
        return {"op": "any", "args": [c.to_json(thresholds) for c in self.conditions]}


@dataclass(frozen=True)
class AllOf(Condition):
    conditions: tuple

    def __call__(self, answers, thresholds):
        return all(condition(answers, thresholds) for condition in self.conditions)

    def codes(self):
        return set().union(*(condition.codes() for condition in self.conditions))

    def to_json(self, thresholds):
        return {"op": "all", "args": [c.to_json(thresholds) for c in self.conditions]}


# Named conditions (INSTRUMENT.md 2.6).
PREGNANCY_STEP_APPLIES = Not(Eq("sex_at_birth", "male"))
BP_REPEAT_NEEDED = AnyOf(
    (Compare("vit_sbp", ">", "bp_caution_sbp"), Compare("vit_dbp", ">", "bp_caution_dbp"))
)
ALCOHOL_QUESTIONS_APPLY = AnyOf((Compare("audc_1", ">", 0), Includes("indication", "aud")))
STOPBANG_ASKED = In("resp_osa", ("no", "unsure"))


# ---------------------------------------------------------------------------
# Questions and steps


@dataclass(frozen=True)
class Choice:
    key: Any  # str for single/multi, int for scale
    label: str


@dataclass(frozen=True)
class Question:
    code: str
    label: str
    type: str
    required: bool = True
    choices: tuple = ()
    shown_when: Condition | None = None
    basis: str = ""
    help_text: str = ""
    # Hard range (int, decimal) and plausibility band (vitals only).
    min_value: Any = None
    max_value: Any = None
    plausible_min: Any = None
    plausible_max: Any = None
    decimal_places: int | None = None
    # Text length limits.
    min_length: int | None = None
    max_length: int | None = None
    # Must be strictly lower than the answer to this code (diastolic < systolic).
    less_than: str | None = None
    # Dates of past events: not after the screening date, not before date_of_birth.
    past_event: bool = False
    # Not later than the screening date / now (date of birth, last drink).
    not_future: bool = False

    def choice_label(self, key):
        """Return the label of choice ``key`` (the key itself if unknown)."""
        for choice in self.choices:
            if choice.key == key:
                return choice.label
        return str(key)


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    questions: tuple
    applies_when: Condition | None = None
    intro: str = ""
    codes: tuple = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "codes", tuple(q.code for q in self.questions))


def _choices(*pairs):
    return tuple(Choice(key, label) for key, label in pairs)


YNU_CHOICES = _choices(("yes", "Yes"), ("no", "No"), ("unsure", "Unsure"))
YN_CHOICES = _choices(("yes", "Yes"), ("no", "No"))


def ynu(code, label, shown_when=None, basis="", **kwargs):
    return Question(code, label, YNU, choices=YNU_CHOICES, shown_when=shown_when, basis=basis, **kwargs)


def yn(code, label, shown_when=None, basis="", **kwargs):
    return Question(code, label, YN, choices=YN_CHOICES, shown_when=shown_when, basis=basis, **kwargs)


PATIENT = Step(
    "patient",
    "Patient",
    (
        Question("first_name", "First name", TEXT, min_length=1, max_length=100,
                 basis="administrative"),
        Question("last_name", "Last name", TEXT, min_length=1, max_length=100,
                 basis="administrative"),
        Question("date_of_birth", "Date of birth", DATE, not_future=True, basis="E12, A5, L8"),
        Question("mrn", "Clinic chart number (MRN)", TEXT, required=False, max_length=50,
                 basis="administrative"),
        Question(
            "sex_at_birth",
            "Sex assigned at birth (used for scoring cut-offs and to decide whether "
            "pregnancy questions apply)",
            SINGLE,
            choices=_choices(
                ("female", "Female"), ("male", "Male"), ("intersex", "Intersex"),
                ("not_stated", "Not stated"),
            ),
            basis="A1, L8, E7",
        ),
        Question(
            "indication",
            "Reason(s) for referral",
            MULTI,
            choices=_choices(
                ("aud", "Alcohol use disorder"),
                ("other_sud", "Other substance use disorder"),
                ("depression", "Depression (including treatment-resistant)"),
                ("bipolar_depression", "Bipolar depression"),
                ("ptsd", "PTSD"),
                ("ocd", "OCD"),
                ("anxiety", "Anxiety disorder"),
                ("other", "Other"),
            ),
            basis="C1, C6",
        ),
        Question("indication_other", "Other reason for referral", TEXT, max_length=200,
                 shown_when=Includes("indication", "other"), basis="C1"),
    ),
)

VITALS = Step(
    "vitals",
    "Vital signs",
    (
        Question("vit_sbp", "Seated systolic blood pressure, mmHg (clinician)", INT,
                 min_value=50, max_value=300, plausible_min=70, plausible_max=250,
                 basis="K1, E3, K12"),
        Question("vit_dbp", "Seated diastolic blood pressure, mmHg (clinician)", INT,
                 min_value=20, max_value=200, plausible_min=40, plausible_max=150,
                 less_than="vit_sbp", basis="K1, E3, K12"),
        Question("vit_bp_repeat_sbp",
                 "Repeat systolic BP after at least 5 minutes' seated rest, mmHg (clinician)",
                 INT, min_value=50, max_value=300, plausible_min=70, plausible_max=250,
                 shown_when=BP_REPEAT_NEEDED, basis="E3, A10"),
        Question("vit_bp_repeat_dbp",
                 "Repeat diastolic BP after at least 5 minutes' seated rest, mmHg (clinician)",
                 INT, min_value=20, max_value=200, plausible_min=40, plausible_max=150,
                 less_than="vit_bp_repeat_sbp", shown_when=BP_REPEAT_NEEDED, basis="E3, K12"),
        Question("vit_hr", "Heart rate, beats per minute (clinician)", INT,
                 min_value=30, max_value=220, basis="A10, K3"),
        Question("vit_spo2", "Oxygen saturation (SpO2) on room air, % (clinician)", INT,
                 min_value=50, max_value=100, basis="E10, K5"),
        Question("vit_weight_kg", "Weight, kg (clinician)", DECIMAL, decimal_places=1,
                 min_value=Decimal("20.0"), max_value=Decimal("350.0"), basis="C1, A9, L8"),
        Question("vit_height_cm", "Height, cm (clinician)", DECIMAL, decimal_places=1,
                 min_value=Decimal("100.0"), max_value=Decimal("250.0"), basis="L8"),
        Question("vit_neck_cm", "Neck circumference, cm (clinician; for STOP-Bang)", DECIMAL,
                 required=False, decimal_places=1, min_value=Decimal("20.0"),
                 max_value=Decimal("80.0"), basis="L8"),
        Question("vit_bac", "Breath alcohol today, g/dL (clinician)", DECIMAL, required=False,
                 decimal_places=3, min_value=Decimal("0.000"), max_value=Decimal("0.500"),
                 basis="A6, K13"),
    ),
)

# INSTRUMENT-DATA: the remaining steps (pregnancy .. review) are defined below.

STEPS = (PATIENT, VITALS)

STEP_SLUGS = tuple(step.slug for step in STEPS)
STEPS_BY_SLUG = {step.slug: step for step in STEPS}
QUESTIONS = {q.code: q for step in STEPS for q in step.questions}
_STEP_OF = {q.code: step for step in STEPS for q in step.questions}


def question(code):
    """Return the question with ``code``."""
    return QUESTIONS[code]


def step_of(code):
    """Return the step that asks question ``code``."""
    return _STEP_OF[code]


def step_applies(step, answers, thresholds):
    """Return whether ``step`` is shown for these answers."""
    return step.applies_when is None or step.applies_when(answers, thresholds)


def is_shown(code, answers, thresholds):
    """Return whether question ``code`` is shown (its step applies and its condition holds)."""
    q = QUESTIONS[code]
    if not step_applies(_STEP_OF[code], answers, thresholds):
        return False
    return q.shown_when is None or q.shown_when(answers, thresholds)


def unanswered(code, answers, thresholds):
    """Return ``unanswered(code)`` of INSTRUMENT.md 2.6: shown but absent."""
    return code not in answers and is_shown(code, answers, thresholds)


def prune_hidden(answers, thresholds):
    """Return a copy of ``answers`` without the answers of hidden questions (one pass, in order)."""
    kept = {}
    for step in STEPS:
        for q in step.questions:
            if q.code not in answers:
                continue
            if step_applies(step, kept, thresholds) and (
                q.shown_when is None or q.shown_when(kept, thresholds)
            ):
                kept[q.code] = answers[q.code]
    return kept


# ---------------------------------------------------------------------------
# Codec: typed answers <-> JSON-safe values.


def encode_value(q, value):
    """Return the JSON-safe form of one typed answer."""
    if q.type == DECIMAL:
        return str(value)
    if q.type == DATE:
        return value.isoformat()
    if q.type == DATETIME:
        return value.isoformat()
    if q.type == MULTI:
        return list(value)
    if q.type == MED_LIST:
        return [
            {"name": row["name"], "dose": row["dose"], "frequency": row["frequency"]}
            for row in value
        ]
    return value


def decode_value(q, raw):
    """Return the typed answer from its JSON-safe form."""
    if q.type == DECIMAL:
        return Decimal(raw).quantize(Decimal(1).scaleb(-q.decimal_places))
    if q.type == DATE:
        return dt.date.fromisoformat(raw)
    if q.type == DATETIME:
        return dt.datetime.fromisoformat(raw)
    if q.type == MULTI:
        return list(raw)
    if q.type == MED_LIST:
        return [dict(row) for row in raw]
    return raw


def encode_answers(answers):
    """Return the JSON-safe form of an answers dict, in instrument order."""
    return {code: encode_value(q, answers[code]) for code, q in QUESTIONS.items() if code in answers}


def decode_answers(data):
    """Return a typed answers dict from its JSON-safe form (unknown codes are dropped)."""
    return {code: decode_value(q, data[code]) for code, q in QUESTIONS.items() if code in data}


def display_value(code, value):
    """Return an answer as staff read it: choice labels, local dates, lists joined."""
    q = QUESTIONS[code]
    if q.type in (YNU, YN, SINGLE, SCALE):
        return q.choice_label(value)
    if q.type == MULTI:
        return ", ".join(q.choice_label(key) for key in value)
    if q.type == BOOL:
        return "Yes" if value else "No"
    if q.type == DATE:
        return value.strftime("%Y-%m-%d")
    if q.type == DATETIME:
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    if q.type == MED_LIST:
        return "; ".join(
            " ".join(part for part in (row["name"], row["dose"], row["frequency"]) if part)
            for row in value
        )
    return str(value)
