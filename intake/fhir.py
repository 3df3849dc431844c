"""FHIR R4 handoff: the instrument as a Questionnaire, a screening as a QuestionnaireResponse.

Both are plain JSON-safe dicts built from the instrument definition and the
frozen snapshot; nothing here touches HTTP. Tests validate them with the
fhir.resources R4B models.
"""

import datetime as dt
import json
from decimal import Decimal

from django.conf import settings

from intake import instrument
from intake.thresholds import DEFAULTS

# Extension that carries a "shown when" condition enableWhen cannot express.
SHOWN_WHEN_EXTENSION = instrument.QUESTIONNAIRE_URL + "/StructureDefinition/shown-when"
MED_FIELDS = (
    ("name", "Medication name", True),
    ("dose", "Dose", False),
    ("frequency", "How often", False),
)

_CHOICE_TYPES = {
    instrument.YNU,
    instrument.YN,
    instrument.SINGLE,
    instrument.SCALE,
    instrument.MULTI,
}
_FHIR_TYPES = {
    instrument.INT: "integer",
    instrument.DECIMAL: "decimal",
    instrument.DATE: "date",
    instrument.DATETIME: "dateTime",
    instrument.BOOL: "boolean",
    instrument.MED_LIST: "group",
}
_COMPARE_OPS = {">", ">=", "<", "<="}


def canonical():
    """Return the Questionnaire canonical with its version (``url|version``)."""
    return f"{instrument.QUESTIONNAIRE_URL}|{instrument.INSTRUMENT_VERSION}"


def choice_system(code):
    """Return the code system URI of the choices of question ``code``."""
    return f"{instrument.QUESTIONNAIRE_URL}/CodeSystem/{code}"


def coding(question, key):
    """Return the FHIR Coding of choice ``key`` of ``question``."""
    return {
        "system": choice_system(question.code),
        "code": str(key),
        "display": question.choice_label(key),
    }


def step_link_id(step):
    """Return the linkId of a step's group (prefixed: a step and a question share a name)."""
    return f"step-{step.slug}"


# ---------------------------------------------------------------------------
# Questionnaire


def _item_type(question):
    if question.type in _CHOICE_TYPES:
        return "choice"
    if question.type == instrument.TEXT:
        return "string" if (question.max_length or 10_000) <= 200 else "text"
    return _FHIR_TYPES[question.type]


def _answer_for_condition(question, value):
    """Return the enableWhen ``answer[x]`` for comparing ``question`` with ``value``."""
    if question.type == instrument.BOOL:
        return {"answerBoolean": bool(value)}
    if question.type in _CHOICE_TYPES:
        return {"answerCoding": coding(question, value)}
    if question.type == instrument.INT:
        return {"answerInteger": int(value)}
    if question.type == instrument.DECIMAL:
        return {"answerDecimal": float(value)}
    return {"answerString": str(value)}


def _simple_enable_when(condition):
    """Return the enableWhen entries and their joining behaviour for a simple condition.

    Returns ``(entries, behavior)`` with behavior "any", "all" or None (one entry),
    or None when the condition cannot be written as enableWhen.
    """
    op = condition["op"]
    if op in ("in", "includes_any"):
        question = instrument.question(condition["code"])
        entries = [
            {"question": question.code, "operator": "=", **_answer_for_condition(question, value)}
            for value in condition["values"]
        ]
        return entries, ("any" if len(entries) > 1 else None)
    if op == "compare":
        question = instrument.question(condition["code"])
        if question.choices:
            # A comparison on a scored choice is the set of choices that satisfy it.
            keys = [
                choice.key
                for choice in question.choices
                if _compare(choice.key, condition["cmp"], condition["value"])
            ]
            entries = [
                {"question": question.code, "operator": "=", **_answer_for_condition(question, key)}
                for key in keys
            ]
            return entries, ("any" if len(entries) > 1 else None)
        if condition["cmp"] in _COMPARE_OPS:
            return [
                {
                    "question": question.code,
                    "operator": condition["cmp"],
                    **_answer_for_condition(question, condition["value"]),
                }
            ], None
        return None
    if op == "not":
        inner = condition["arg"]
        if inner["op"] == "in" and len(inner["values"]) == 1:
            question = instrument.question(inner["code"])
            return [
                {
                    "question": question.code,
                    "operator": "!=",
                    **_answer_for_condition(question, inner["values"][0]),
                }
            ], None
        return None
    if op in ("any", "all"):
        entries = []
        for arg in condition["args"]:
            simple = _simple_enable_when(arg)
            if simple is None:
                return None
            arg_entries, behavior = simple
            # Only flatten when the inner joining matches the outer one.
            if behavior is not None and behavior != op:
                return None
            entries.extend(arg_entries)
        return entries, op
    return None


def _compare(left, cmp, right):
    return {
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[cmp]


def _drop_implied(condition, visibility):
    """Drop conjuncts already implied by another conjunct's question being enabled.

    An answer to a disabled question is absent, so ``x = v`` already implies the
    condition that shows ``x``; this keeps such conditions expressible.
    """
    if condition["op"] != "all":
        return condition
    implied = [
        visibility["questions"].get(arg["code"])
        for arg in condition["args"]
        if arg["op"] in ("in", "includes_any")
    ]
    args = [arg for arg in condition["args"] if arg not in implied]
    if len(args) == 1:
        return args[0]
    return {**condition, "args": args}


def _apply_condition(item, condition, visibility):
    """Set enableWhen on ``item`` for ``condition``, or document it in an extension."""
    condition = _drop_implied(condition, visibility)
    simple = _simple_enable_when(condition)
    if simple is None:
        item["extension"] = [
            {"url": SHOWN_WHEN_EXTENSION, "valueString": json.dumps(condition, sort_keys=True)}
        ]
        item["text"] += " [Shown when: see the shown-when extension.]"
        return
    entries, behavior = simple
    item["enableWhen"] = entries
    if len(entries) > 1:
        item["enableBehavior"] = behavior or "all"


def _question_item(question, visibility):
    item = {
        "linkId": question.code,
        "text": question.label,
        "type": _item_type(question),
        "required": bool(question.required),
    }
    if question.type == instrument.MED_LIST:
        item["repeats"] = True
        item["item"] = [
            {
                "linkId": f"{question.code}.{name}",
                "text": label,
                "type": "string",
                "required": required,
                "maxLength": (
                    instrument.MED_NAME_MAX if name == "name" else instrument.MED_FIELD_MAX
                ),
            }
            for name, label, required in MED_FIELDS
        ]
    if question.type == instrument.MULTI:
        item["repeats"] = True
    if question.choices:
        item["answerOption"] = [
            {"valueCoding": coding(question, choice.key)} for choice in question.choices
        ]
    if question.type == instrument.TEXT and question.max_length:
        item["maxLength"] = question.max_length
    condition = visibility["questions"].get(question.code)
    if condition is not None:
        _apply_condition(item, condition, visibility)
    return item


def questionnaire(thresholds=None):
    """Return the instrument as a FHIR R4 Questionnaire (dict), one group per step.

    ``thresholds`` resolves threshold names in branching conditions (default:
    the shipped defaults).
    """
    visibility = instrument.visibility_json(dict(DEFAULTS) if thresholds is None else thresholds)
    groups = []
    for step in instrument.STEPS:
        group = {
            "linkId": step_link_id(step),
            "text": step.title,
            "type": "group",
            "item": [_question_item(q, visibility) for q in step.questions],
        }
        condition = visibility["steps"].get(step.slug)
        if condition is not None:
            _apply_condition(group, condition, visibility)
        groups.append(group)
    return {
        "resourceType": "Questionnaire",
        "url": instrument.QUESTIONNAIRE_URL,
        "version": instrument.INSTRUMENT_VERSION,
        "name": "KetamineIntakeScreening",
        "title": "Ketamine-therapy intake screening",
        "status": "draft",
        "subjectType": ["Patient"],
        "description": (
            "Staff-facing intake screening. Flags raised from the answers are prompts "
            "for clinician review, not a treatment decision."
        ),
        "item": groups,
    }


# ---------------------------------------------------------------------------
# QuestionnaireResponse


def _answers(question, value):
    """Return the FHIR answer list of one typed answer."""
    if question.type == instrument.MULTI:
        return [{"valueCoding": coding(question, key)} for key in value]
    if question.type in _CHOICE_TYPES:
        return [{"valueCoding": coding(question, value)}]
    if question.type == instrument.BOOL:
        return [{"valueBoolean": bool(value)}]
    if question.type == instrument.INT:
        return [{"valueInteger": int(value)}]
    if question.type == instrument.DECIMAL:
        return [{"valueDecimal": float(Decimal(value))}]
    if question.type == instrument.DATE:
        return [{"valueDate": value.isoformat()}]
    if question.type == instrument.DATETIME:
        return [{"valueDateTime": value.isoformat()}]
    return [{"valueString": str(value)}]


def _response_items(question, value):
    if question.type == instrument.MED_LIST:
        items = []
        for row in value:
            sub_items = [
                {
                    "linkId": f"{question.code}.{name}",
                    "text": label,
                    "answer": [{"valueString": row[name]}],
                }
                for name, label, _required in MED_FIELDS
                if row.get(name)
            ]
            items.append({"linkId": question.code, "text": question.label, "item": sub_items})
        return items
    return [{"linkId": question.code, "text": question.label, "answer": _answers(question, value)}]


def questionnaire_response(screening, *, amended=None):
    """Return the frozen answers of ``screening`` as a FHIR R4 QuestionnaireResponse (dict).

    ``amended`` sets status ``amended`` (default: whether an addendum exists).
    """
    answers = instrument.decode_answers(screening.answers)
    if amended is None:
        amended = screening.addenda.exists()
    groups = []
    for step in instrument.STEPS:
        items = []
        for question in step.questions:
            if question.code in answers:
                items.extend(_response_items(question, answers[question.code]))
        if items:
            groups.append({"linkId": step_link_id(step), "text": step.title, "item": items})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"screening-{screening.pk}",
        "identifier": {
            "system": f"{instrument.QUESTIONNAIRE_URL}/screening",
            "value": str(screening.pk),
        },
        "questionnaire": canonical(),
        "status": "amended" if amended else "completed",
        "subject": {"display": screening.patient_name},
        "authored": screening.submitted_at.astimezone(dt.UTC).isoformat(),
        "author": {"display": screening.submitted_by.get_username()},
        "meta": {
            "tag": [
                {
                    "system": f"{instrument.QUESTIONNAIRE_URL}/snapshot-sha256",
                    "code": screening.snapshot_sha256 or "unknown",
                }
            ]
        },
        "text": {
            "status": "generated",
            "div": (
                '<div xmlns="http://www.w3.org/1999/xhtml">'
                f"Intake screening {int(screening.pk)} from {_escape(settings.CLINIC_NAME)}"
                "</div>"
            ),
        },
        "item": groups,
    }


def _escape(text):
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def response_json(screening, *, amended=None):
    """Return the QuestionnaireResponse of ``screening`` as UTF-8 JSON bytes."""
    return json.dumps(
        questionnaire_response(screening, amended=amended), ensure_ascii=False, indent=2
    ).encode("utf-8")
