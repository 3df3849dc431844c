"""Display rows of answers and derived values for the staff pages, review step, panel and PDF.

One place turns typed answers into what staff read: the labels, the shown values,
"Unsure" marks, medications with the classes the lexicon recognized, and the
derived values with their display labels.
"""

from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from intake import instrument, lexicon, rules

UNSURE_KEYS = frozenset({"unsure"})

PROTOCOL_NOT_ENTERED = _(
    "Not entered in this app. Follow the clinic's own suicide-safety protocol, and ask "
    "whoever runs the app's server to have it shown here."
)


def suicide_protocol():
    """Return the clinic's suicide-safety protocol text as configured, or say it is not entered."""
    return settings.SUICIDE_SAFETY_PROTOCOL or str(PROTOCOL_NOT_ENTERED)


# The rules' labels (marked for translation there), with units where a value has one.
DERIVED_LABELS = {
    **{name: _(label) for name, label in rules.DERIVED_LABELS.items()},
    "age": _("Age (years)"),
    "bmi": _("BMI (kg/m²)"),
    "bp_rest_sbp": _("Rested systolic BP (mmHg)"),
    "bp_rest_dbp": _("Rested diastolic BP (mmHg)"),
}

# The derived values shown as rows (INSTRUMENT.md section 4), with why each may be missing.
NOT_COMPUTED = {
    "age": _("Not computed: needs the date of birth."),
    "bmi": _("Not computed: needs weight and height."),
    "bp_rest_sbp": _("Not computed: needs the blood pressure."),
    "bp_rest_dbp": _("Not computed: needs the blood pressure."),
    "audc_total": _("Not computed: needs the AUDIT-C items."),
    "phq9_total": _("Not computed: needs all nine PHQ-9 items."),
    "gad7_total": _("Not computed: needs all seven GAD-7 items."),
    "stopbang_score": _(
        "Not computed: STOP-Bang is asked only when sleep apnea is not "
        "diagnosed or its diagnosis is unsure."
    ),
}


@dataclass(frozen=True)
class AnswerRow:
    """One answer as staff read it; ``missing`` marks a shown question left unanswered."""

    code: str
    label: str
    type: str
    display: str = ""
    unsure: bool = False
    medications: list | None = None
    missing: bool = False

    @property
    def long(self):
        """Return whether the answer is free text that may run long."""
        return self.type == instrument.TEXT


class DerivedRow(NamedTuple):
    """One derived value: its label, the value (None when not computed) and why it is missing."""

    label: str
    value: object
    why: str


def is_unsure(value):
    """Return whether an answer is (or includes) "unsure"."""
    if isinstance(value, list):
        return any(key in UNSURE_KEYS for key in value if isinstance(key, str))
    return value in UNSURE_KEYS


def class_labels(keys):
    """Return the labels of lexicon classes ``keys`` (an unknown key is shown as itself)."""
    labels = []
    for key in keys:
        try:
            labels.append(lexicon.class_label(key))
        except KeyError:
            labels.append(key)
    return labels


def medication_rows(medications, med_classes=None):
    """Return the medication rows with their class labels.

    ``med_classes`` are a submitted snapshot's classes, one list per medication;
    without them the names are classified now.
    """
    rows = []
    for index, med in enumerate(medications):
        if med_classes is None:
            keys = lexicon.classify(med["name"])
        else:
            keys = med_classes[index] if index < len(med_classes) else []
        rows.append({**med, "classes": class_labels(keys)})
    return rows


def answer_rows(step, answers, *, tz, include_missing=False, thresholds=None, med_classes=None):
    """Return the display rows of one step's answers.

    With ``include_missing`` (a draft under review) only the questions shown for
    these answers count, and unanswered required or yes/no ones are marked missing.
    """
    rows = []
    for q in step.questions:
        if include_missing and not instrument.is_shown(q.code, answers, thresholds):
            continue
        if q.code not in answers:
            if include_missing and (q.type == instrument.BOOL or q.required):
                rows.append(AnswerRow(code=q.code, label=q.label, type=q.type, missing=True))
            continue
        value = answers[q.code]
        rows.append(
            AnswerRow(
                code=q.code,
                label=q.label,
                type=q.type,
                display=instrument.display_value(q.code, value, tz),
                unsure=is_unsure(value),
                medications=medication_rows(value, med_classes)
                if q.type == instrument.MED_LIST
                else None,
            )
        )
    return rows


def answer_sections(
    answers, *, tz, include_missing=False, thresholds=None, steps=None, med_classes=None
):
    """Return typed answers grouped by step, in wizard order, as ``{"slug", "title", "rows"}``.

    Steps without rows are left out unless ``include_missing`` is set; ``steps``
    defaults to every step of the instrument.
    """
    sections = []
    for step in instrument.STEPS if steps is None else steps:
        rows = answer_rows(
            step,
            answers,
            tz=tz,
            include_missing=include_missing,
            thresholds=thresholds,
            med_classes=med_classes,
        )
        if rows or include_missing:
            sections.append({"slug": step.slug, "title": step.title, "rows": rows})
    return sections


def snapshot_sections(screening, *, tz):
    """Return a submitted screening's frozen answers grouped by step, with its frozen classes."""
    return answer_sections(
        instrument.decode_answers(screening.answers),
        tz=tz,
        med_classes=(screening.derived or {}).get("med_classes"),
    )


def derived_rows(derived, *, include_missing=False):
    """Return the derived values as ``DerivedRow`` in a fixed order.

    Values not computed are left out unless ``include_missing`` is set; the
    STOP-Bang score names the items that could not be scored.
    """
    rows = []
    for name, why in NOT_COMPUTED.items():
        value = derived.get(name)
        if value in (None, ""):
            if include_missing:
                rows.append(DerivedRow(DERIVED_LABELS[name], None, why))
            continue
        if name == "stopbang_score" and derived.get("stopbang_unknown"):
            value = gettext("%(score)s (items not scored: %(items)s)") % {
                "score": value,
                "items": ", ".join(derived["stopbang_unknown"]),
            }
        rows.append(DerivedRow(DERIVED_LABELS[name], value, why))
    return rows


def evidence_text(item, *, tz):
    """Return one stored evidence entry of a flag as readable text ("label: value")."""
    if isinstance(item, dict) and "medication" in item:
        classes = class_labels(item.get("classes") or [])
        return gettext("%(name)s (%(classes)s)") % {
            "name": item["medication"],
            "classes": ", ".join(classes) if classes else gettext("not recognized"),
        }
    if not (isinstance(item, dict) and "code" in item):
        return str(item)
    code, value = item["code"], item.get("value")
    question = instrument.QUESTIONS.get(code)
    label = question.label if question else str(DERIVED_LABELS.get(code, code))
    if item.get("absent") or value is None:
        return gettext("%(label)s: not recorded") % {"label": label}
    if question is None:
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    else:
        try:
            shown = instrument.display_value(code, instrument.decode_value(question, value), tz)
        except (TypeError, ValueError, KeyError, ArithmeticError):
            shown = str(value)
    if "hours_since" in item:
        shown = gettext("%(when)s (%(hours)s hours before screening)") % {
            "when": shown,
            "hours": item["hours_since"],
        }
    return f"{label} {shown}" if label.endswith("?") else f"{label}: {shown}"
