"""Tests for intake.presentation: display rows of answers and derived values. No database."""

import datetime as dt

from intake import instrument, presentation
from intake.thresholds import DEFAULTS
from tests.factories import quiet_answers

UTC = dt.UTC


def rows_by_code(sections):
    return {row.code: row for section in sections for row in section["rows"]}


def test_sections_follow_the_wizard_order_and_skip_empty_steps():
    answers = quiet_answers()
    sections = presentation.answer_sections(answers, tz=UTC)
    slugs = [section["slug"] for section in sections]
    assert slugs == [step.slug for step in instrument.STEPS if slugs.count(step.slug)]
    assert all(section["rows"] for section in sections)
    assert set(rows_by_code(sections)) == set(answers)


def test_unsure_answers_are_marked_and_labels_shown():
    rows = rows_by_code(presentation.answer_sections(quiet_answers(cv_htn="unsure"), tz=UTC))
    assert rows["cv_htn"].unsure
    assert rows["cv_htn"].display == instrument.display_value("cv_htn", "unsure")
    assert not rows["cv_mi"].unsure


def test_medications_carry_snapshot_classes_or_classify_now():
    meds = [
        {"name": "Lorazepam", "dose": "1 mg", "frequency": "at night"},
        {"name": "Zzyzx tonic", "dose": "", "frequency": ""},
    ]
    answers = quiet_answers(med_none=False, medications=meds)
    live = rows_by_code(presentation.answer_sections(answers, tz=UTC))["medications"]
    assert live.medications[0]["classes"] and live.medications[1]["classes"] == []
    frozen = rows_by_code(
        presentation.answer_sections(answers, tz=UTC, med_classes=[["unknown_key"]])
    )["medications"]
    assert [med["classes"] for med in frozen.medications] == [["unknown_key"], []]


def test_missing_answers_are_marked_only_when_asked():
    answers = quiet_answers(consent_to_screening=None)
    assert "consent_to_screening" not in rows_by_code(presentation.answer_sections(answers, tz=UTC))
    rows = rows_by_code(
        presentation.answer_sections(answers, tz=UTC, include_missing=True, thresholds=DEFAULTS)
    )
    assert rows["consent_to_screening"].missing


def test_derived_rows_leave_out_or_explain_values_not_computed():
    derived = {"age": 40, "stopbang_score": 2, "stopbang_unknown": ["P", "N"]}
    shown = presentation.derived_rows(derived)
    assert [row.value for row in shown] == [40, "2 (items not scored: P, N)"]
    every = presentation.derived_rows(derived, include_missing=True)
    assert len(every) == len(presentation.NOT_COMPUTED)
    assert all(row.why for row in every if row.value is None)


def test_evidence_of_every_stored_shape_reads_as_text():
    def text(item):
        return presentation.evidence_text(item, tz=UTC)

    assert text({"code": "vit_hr", "value": 131}) == "Heart rate, beats per minute (clinician): 131"
    assert text({"code": "cv_htn", "value": "unsure"}) == (
        "Ever told they have high blood pressure? Unsure"
    )
    assert text({"code": "med_reviewed_with_patient", "value": None, "absent": True}).endswith(
        ": not recorded"
    )
    assert text({"medication": "Xanax 0.5mg", "classes": ["benzodiazepine"]}) == (
        "Xanax 0.5mg (Benzodiazepines)"
    )
    assert text({"medication": "sertraline", "classes": []}) == "sertraline (not recognized)"
    last_drink = text(
        {"code": "alc_last_drink", "value": "2026-11-21T22:30:00+00:00", "hours_since": "18.5"}
    )
    assert last_drink.startswith("Date and time of last alcoholic drink: 2026-11-21 22:30")
    assert last_drink.endswith("(18.5 hours before screening)")
    assert text({"code": "bp_rest_sbp", "value": 186}).endswith(": 186")
