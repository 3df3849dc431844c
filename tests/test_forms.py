"""Step forms built from the instrument: types, ranges, precision, exclusive keys, dates, meds."""

import datetime as dt
import itertools
import re
from decimal import Decimal

import pytest
from django import forms
from django.template import Context
from django.utils import timezone

from intake import instrument, thresholds
from intake.forms import (
    INNER_MARKER,
    GroupHeading,
    PythonMarkup,
    Question,
    date_input_limits,
    decide,
    med_list_errors,
    step_form_class,
    step_form_helper,
)
from tests.factories import quiet_answers
from tests.wizard_helpers import post_data, start, step_url

DEFAULTS = dict(thresholds.DEFAULTS)


def make_form(slug, data, context=None, acknowledged=None):
    form_class = step_form_class(slug)
    return form_class(
        data=data,
        prefix=slug,
        context_answers=context if context is not None else {},
        thresholds=DEFAULTS,
        acknowledged=acknowledged,
    )


def step_answers(slug, **overrides):
    answers = quiet_answers(**overrides)
    return {code: answers[code] for code in instrument.STEPS_BY_SLUG[slug].codes if code in answers}


def form_for(slug, context=None, acknowledged=None, extra=None, **overrides):
    answers = quiet_answers(**overrides)
    data = post_data(slug, answers)
    data.update(extra or {})
    earlier = (
        context
        if context is not None
        else {
            code: value
            for code, value in answers.items()
            if instrument.STEP_SLUGS.index(instrument.step_of(code).slug)
            < instrument.STEP_SLUGS.index(slug)
        }
    )
    return make_form(slug, data, earlier, acknowledged)


def test_every_step_builds_a_field_per_question_named_by_code():
    for step in instrument.STEPS:
        form = step_form_class(step.slug)(prefix=step.slug, thresholds=DEFAULTS)
        assert list(form.fields) == list(step.codes)
        assert form["first_name" if step.slug == "patient" else step.codes[0]].html_name == (
            f"{step.slug}-{step.codes[0]}"
        )


@pytest.mark.parametrize("slug", [s.slug for s in instrument.STEPS if s.slug != "pregnancy"])
def test_quiet_answers_validate_to_typed_values(slug):
    form = form_for(slug)
    assert form.is_valid(), form.errors
    assert form.answers == step_answers(slug)


def test_required_questions_are_reported_when_blank():
    form = make_form("patient", {})
    assert not form.is_valid()
    assert set(form.errors) == {
        "first_name",
        "last_name",
        "date_of_birth",
        "sex_at_birth",
        "indication",
    }


def test_optional_question_may_be_blank_and_is_absent():
    form = form_for("patient", mrn=None)
    assert form.is_valid()
    assert "mrn" not in form.answers


@pytest.mark.parametrize(
    ("code", "value", "stored"),
    [
        ("vit_hr", "29", None),
        ("vit_hr", "30", "30"),
        ("vit_hr", "220", "220"),
        ("vit_hr", "221", None),
        ("vit_hr", "72.5", None),
        ("vit_hr", "72.01", None),
        ("vit_hr", "72.0", "72"),
        ("vit_hr", "72.", "72"),
        ("vit_hr", "abc", None),
        ("vit_spo2", "101", None),
        ("vit_weight_kg", "80.25", None),
        ("vit_weight_kg", "80.15", None),
        ("vit_weight_kg", "80.10", "80.1"),
        ("vit_weight_kg", "80.000", "80.0"),
        ("vit_weight_kg", "19.9", None),
        ("vit_weight_kg", "80", "80.0"),
        ("vit_bac", "0.0125", None),
        ("vit_bac", "0.012", "0.012"),
        ("vit_bac", "0.0800", "0.080"),
        ("vit_bac", "0.501", None),
    ],
)
def test_hard_ranges_and_precision_are_enforced_never_rounded(code, value, stored):
    form = form_for("vitals", extra={f"vitals-{code}": value})
    assert form.is_valid() is (stored is not None), form.errors
    if stored is not None:
        assert str(form.answers[code]) == stored


def test_decimal_is_quantized_to_its_places():
    form = form_for("vitals", extra={"vitals-vit_weight_kg": "80"})
    assert form.is_valid()
    assert form.answers["vit_weight_kg"] == Decimal("80.0")
    assert str(form.answers["vit_weight_kg"]) == "80.0"


def test_diastolic_must_be_lower_than_systolic():
    form = form_for("vitals", vit_sbp=120, vit_dbp=120)
    assert not form.is_valid()
    assert "vit_dbp" in form.errors


def test_repeat_bp_is_required_only_when_first_reading_is_high():
    form = form_for("vitals", vit_sbp=150)
    assert not form.is_valid()
    assert {"vit_bp_repeat_sbp", "vit_bp_repeat_dbp"} <= set(form.errors)
    form = form_for("vitals", vit_sbp=150, vit_bp_repeat_sbp=138, vit_bp_repeat_dbp=85)
    assert form.is_valid(), form.errors


def test_hidden_question_answer_is_dropped_not_validated():
    form = form_for("vitals", extra={"vitals-vit_bp_repeat_sbp": "999"})
    assert form.is_valid(), form.errors
    assert "vit_bp_repeat_sbp" not in form.answers
    assert "vit_bp_repeat_sbp" in form.hidden_codes


def test_an_implausible_systolic_asks_for_the_repeat_reading_with_its_warning():
    form = form_for("vitals", vit_sbp=260)
    assert not form.is_valid()
    assert "usual range" in form.errors["vit_sbp"][0]
    assert form.errors["vit_bp_repeat_sbp"] == ["Enter an answer."]
    assert form.errors["vit_bp_repeat_dbp"] == ["Enter an answer."]
    # Confirming 260 with the repeat reading typed is then the only other save.
    second = form_for(
        "vitals",
        acknowledged=form.plausibility_pending,
        vit_sbp=260,
        vit_bp_repeat_sbp=170,
        vit_bp_repeat_dbp=95,
    )
    assert second.is_valid(), second.errors


def test_a_diastolic_is_compared_with_an_implausible_systolic_at_once():
    form = form_for("vitals", vit_sbp=65, vit_dbp=68)
    assert not form.is_valid()
    assert "usual range" in form.errors["vit_sbp"][0]
    assert form.errors["vit_dbp"][0].startswith("Must be lower than")
    assert "vit_dbp" not in form.answers


def test_a_repeat_reading_typed_beside_an_impossible_systolic_is_checked_and_kept():
    # 350 is outside the hard range: whether the repeat reading is asked waits on the
    # corrected value, so it is not required yet, but what was typed in it is checked.
    blank = form_for("vitals", extra={"vitals-vit_sbp": "350"})
    assert not blank.is_valid()
    assert set(blank.errors) == {"vit_sbp"}
    assert blank.undecided_codes == {"vit_bp_repeat_sbp", "vit_bp_repeat_dbp"}
    typed = form_for(
        "vitals",
        extra={
            "vitals-vit_sbp": "350",
            "vitals-vit_bp_repeat_sbp": "150",
            "vitals-vit_bp_repeat_dbp": "160",
        },
    )
    assert not typed.is_valid()
    assert typed.errors["vit_bp_repeat_dbp"][0].startswith("Must be lower than")
    assert not typed.hidden_codes  # the typed repeat reading is kept, not dropped
    assert "vit_bp_repeat_sbp" not in typed.answers


def test_a_question_an_answer_already_brings_up_is_still_required():
    # The diastolic alone brings up the repeat reading, whatever the missing systolic is.
    form = form_for("vitals", extra={"vitals-vit_sbp": "", "vitals-vit_dbp": "95"})
    assert not form.is_valid()
    assert {"vit_sbp", "vit_bp_repeat_sbp", "vit_bp_repeat_dbp"} <= set(form.errors)
    assert not form.undecided_codes


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (instrument.AnyOf((instrument.Eq("a", "yes"), instrument.Eq("x", "yes"))), True),
        (instrument.AnyOf((instrument.Eq("a", "no"), instrument.Eq("x", "yes"))), None),
        (instrument.AllOf((instrument.Eq("a", "no"), instrument.Eq("x", "yes"))), False),
        (instrument.AllOf((instrument.Eq("a", "yes"), instrument.Eq("x", "yes"))), None),
        (instrument.Not(instrument.Eq("x", "yes")), None),
        (instrument.Not(instrument.Eq("a", "no")), True),
    ],
)
def test_a_condition_on_an_unsettled_answer_is_decided_only_when_it_cannot_change(
    condition, expected
):
    assert decide(condition, {"a": "yes"}, {"x"}, DEFAULTS) is expected


@pytest.mark.parametrize("code", ["vit_sbp", "vit_dbp"])
def test_implausible_vital_is_refused_once_then_accepted(code):
    value = {"vit_sbp": 260, "vit_dbp": 35}[code]
    overrides = {code: value}
    if code == "vit_sbp":
        overrides.update(vit_bp_repeat_sbp=130, vit_bp_repeat_dbp=80)
    first = form_for("vitals", **overrides)
    assert not first.is_valid()
    assert "usual range" in first.errors[code][0]
    assert first.plausibility_pending == {code: str(value)}
    second = form_for("vitals", acknowledged=first.plausibility_pending, **overrides)
    assert second.is_valid(), second.errors
    assert second.answers[code] == value
    assert second.plausibility_accepted == {code: str(value)}


def test_a_different_implausible_value_needs_its_own_confirmation():
    first = form_for("vitals", vit_dbp=35)
    assert not first.is_valid()
    second = form_for("vitals", acknowledged=first.plausibility_pending, vit_dbp=30)
    assert not second.is_valid()


@pytest.mark.parametrize(
    ("code", "keys"),
    [
        ("liver_dx", ["none", "hepatitis"]),
        ("eye_status", ["unsure", "glaucoma_controlled"]),
        ("resp_lung", ["none", "copd"]),
    ],
)
def test_exclusive_keys_cannot_be_combined(code, keys):
    form = form_for("other_conditions", **{code: keys})
    assert not form.is_valid()
    assert "cannot be combined" in form.errors[code][0]


def test_exclusive_lab_keys_cannot_be_combined():
    form = form_for("substances", lab_uds=["not_done", "cannabis"])
    assert not form.is_valid()
    form = form_for("substances", lab_uds=["cannabis", "opioid"])
    assert form.is_valid(), form.errors


def test_multi_answer_is_stored_in_choice_order():
    form = form_for("patient", indication=["ptsd", "aud"])
    assert form.is_valid()
    assert form.answers["indication"] == ["aud", "ptsd"]


def test_scale_answer_is_an_int():
    form = form_for("mood")
    assert form.is_valid()
    assert form.answers["phq9_1"] == 2 and isinstance(form.answers["phq9_1"], int)


def test_date_of_birth_cannot_be_in_the_future():
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    form = form_for("patient", date_of_birth=tomorrow)
    assert not form.is_valid()
    assert "future" in form.errors["date_of_birth"][0]


def test_age_must_be_at_most_120():
    today = timezone.localdate()
    form = form_for("patient", date_of_birth=today.replace(year=today.year - 121))
    assert not form.is_valid()
    form = form_for("patient", date_of_birth=today.replace(year=today.year - 120))
    assert form.is_valid(), form.errors


def test_past_event_not_after_screening_date_nor_before_birth():
    today = timezone.localdate()
    future = form_for("cardiovascular", cv_mi="yes", cv_mi_date=today + dt.timedelta(days=1))
    assert not future.is_valid()
    before_birth = form_for("cardiovascular", cv_mi="yes", cv_mi_date=dt.date(1980, 1, 1))
    assert not before_birth.is_valid()
    assert "date of birth" in before_birth.errors["cv_mi_date"][0]
    fine = form_for("cardiovascular", cv_mi="yes", cv_mi_date=dt.date(2020, 5, 1))
    assert fine.is_valid(), fine.errors


DATE_QUESTIONS = [
    q for q in instrument.QUESTIONS.values() if q.type in (instrument.DATE, instrument.DATETIME)
]


def rendered_input(form, code):
    question = next(q for q in form.helper.layout.fields if q.question["code"] == code)
    return question.render(form, Context())


@pytest.mark.parametrize("q", DATE_QUESTIONS, ids=lambda q: q.code)
def test_date_inputs_are_bounded_to_four_digit_years_ending_on_the_screening_date(q):
    """Chromium lets a year take six digits unless min/max bound it (typed fast, 202608)."""
    assert q.not_future or q.past_event  # every date in the instrument is in the past
    # 03:30 UTC on 23 November is still 22 November in the clinic (America/New_York).
    now = dt.datetime(2026, 11, 23, 3, 30, tzinfo=dt.UTC)
    slug = instrument.step_of(q.code).slug
    form = step_form_class(slug)(
        data={}, prefix=slug, context_answers={}, thresholds=DEFAULTS, now=now
    )
    html = rendered_input(form, q.code)
    if q.type == instrument.DATE:
        assert 'type="date"' in html
        assert 'min="1900-01-01" max="2026-11-22"' in html
    else:
        assert 'type="datetime-local"' in html
        assert 'min="1900-01-01T00:00" max="2026-11-22T23:59"' in html


def test_date_input_limits_without_an_end_allow_any_four_digit_year():
    today = dt.date(2026, 11, 22)
    assert date_input_limits(instrument.DATE, up_to_today=False, today=today) == {
        "min": "1900-01-01",
        "max": "9999-12-31",
    }
    assert date_input_limits(instrument.DATETIME, up_to_today=False, today=today) == {
        "min": "1900-01-01T00:00",
        "max": "9999-12-31T23:59",
    }


def test_bounds_never_replace_the_servers_messages(client, staff_user):
    """The step form is novalidate: a date past max is posted and the server explains it."""
    client.force_login(staff_user)
    draft = start(client)
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    response = client.post(
        step_url(draft, "patient"), post_data("patient", quiet_answers(date_of_birth=tomorrow))
    )
    page = response.content.decode()
    assert re.search(r'<form method="post" action="[^"]*" novalidate', page)
    assert "The date of birth cannot be in the future." in page
    assert f'max="{timezone.localdate().isoformat()}"' in page


# Alcohol answers under which the time of the last drink is asked.
LAST_DRINK_ASKED = {
    "audc_1": 2,
    "audc_2": 1,
    "audc_3": 0,
    "alc_last_drink_unknown": "no",
    "alc_daily": "no",
    "alc_morning": "no",
    "aw_sx_now": ["none"],
    "aw_hx_seizure": "no",
    "aw_hx_dt": "no",
    "aw_prior_episodes": 0,
}


def test_last_drink_cannot_be_in_the_future_and_is_aware_in_clinic_time():
    base = LAST_DRINK_ASKED
    later = timezone.now() + dt.timedelta(hours=3)
    form = form_for("alcohol", alc_last_drink=later, **base)
    assert not form.is_valid()
    assert "future" in form.errors["alc_last_drink"][0]
    form = form_for("alcohol", extra={"alcohol-alc_last_drink": "2024-03-01T21:30"}, **base)
    assert form.is_valid(), form.errors
    value = form.answers["alc_last_drink"]
    assert value.tzinfo is not None
    assert timezone.localtime(value).strftime("%Y-%m-%d %H:%M") == "2024-03-01 21:30"
    assert str(timezone.localtime(value).tzinfo) == str(timezone.get_default_timezone())


def test_last_drink_cannot_be_before_the_date_of_birth():
    dob = quiet_answers()["date_of_birth"]
    base = LAST_DRINK_ASKED
    day_before = (dob - dt.timedelta(days=1)).isoformat()
    form = form_for("alcohol", extra={"alcohol-alc_last_drink": f"{day_before}T23:30"}, **base)
    assert not form.is_valid()
    assert "date of birth" in form.errors["alc_last_drink"][0]
    form = form_for("alcohol", extra={"alcohol-alc_last_drink": f"{dob.isoformat()}T00:30"}, **base)
    assert form.is_valid(), form.errors


def test_med_list_drops_blank_rows_and_strips():
    data = post_data(
        "medications",
        quiet_answers(
            med_none=False,
            medications=[
                {"name": "  Sertraline ", "dose": "50 mg", "frequency": "daily"},
                {"name": "", "dose": "", "frequency": ""},
                {"name": "Ibuprofen", "dose": "", "frequency": ""},
            ],
        ),
    )
    form = make_form("medications", data)
    assert form.is_valid(), form.errors
    assert form.answers["medications"] == [
        {"name": "Sertraline", "dose": "50 mg", "frequency": "daily"},
        {"name": "Ibuprofen", "dose": "", "frequency": ""},
    ]
    assert form.answers["med_none"] is False


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "", "dose": "5 mg", "frequency": ""}, "name"),
        ({"name": "x" * 201, "dose": "", "frequency": ""}, "200"),
        ({"name": "Aspirin", "dose": "x" * 101, "frequency": ""}, "100"),
        ({"name": "Aspirin", "dose": "", "frequency": "x" * 101}, "100"),
    ],
)
def test_med_list_row_rules(row, message):
    data = post_data("medications", quiet_answers(med_none=False, medications=[row]))
    form = make_form("medications", data)
    assert not form.is_valid()
    assert message in " ".join(form.errors["medications"])


def test_med_list_errors_name_the_row_and_input_they_are_about():
    rows = [
        {"name": "Aspirin", "dose": "", "frequency": ""},
        {"name": "", "dose": "5 mg", "frequency": ""},
        {"name": "Ibuprofen", "dose": "x" * (instrument.MED_FIELD_MAX + 1), "frequency": ""},
    ]
    form = make_form(
        "medications", post_data("medications", quiet_answers(med_none=False, medications=rows))
    )
    assert not form.is_valid()
    errors = med_list_errors(form["medications"])
    assert [(e["row"], e["part"], e["anchor"]) for e in errors] == [
        (1, "name", "id_medications-medications-1-name"),
        (2, "dose", "id_medications-medications-2-dose"),
    ]
    assert errors[0]["message"].startswith("Row 2: enter the medicine's name")
    assert errors[1]["message"].startswith("Row 3: dose can be at most")
    assert len({e["id"] for e in errors}) == 2


def test_med_list_widget_marks_only_the_inputs_with_errors():
    rows = [
        {"name": "Aspirin", "dose": "", "frequency": ""},
        {"name": "", "dose": "5 mg", "frequency": ""},
    ]
    form = make_form(
        "medications", post_data("medications", quiet_answers(med_none=False, medications=rows))
    )
    assert not form.is_valid()
    html = str(step_form_helper("medications").render_layout(form, Context()))
    error_id = med_list_errors(form["medications"])[0]["id"]
    assert html.count('aria-invalid="true"') == 1
    assert (
        'id="id_medications-medications-1-name" value="" maxlength="200" autocomplete="off" '
        f'aria-invalid="true" aria-describedby="{error_id}"'
    ) in html
    assert f'<p class="mb-1" id="{error_id}"><strong>Row 2:' in html


@pytest.mark.parametrize("trailing_blanks", [0, 2, 9])
def test_med_list_shows_two_blank_rows_after_the_last_typed_one(trailing_blanks):
    blank = {"name": "", "dose": "", "frequency": ""}
    rows = [
        {"name": "Aspirin", "dose": "", "frequency": ""},
        blank,
        {"name": "", "dose": "5 mg", "frequency": ""},
        *[blank] * trailing_blanks,
    ]
    form = make_form(
        "medications", post_data("medications", quiet_answers(med_none=False, medications=rows))
    )
    assert not form.is_valid()
    html = str(step_form_helper("medications").render_layout(form, Context()))
    assert html.count("data-med-row") == 5  # the three posted, then two blank
    assert 'id="id_medications-medications-4-name"' in html
    assert 'id="id_medications-medications-5-name"' not in html
    # The row the error is about keeps its place and its number.
    assert (
        'id="id_medications-medications-2-name" value="" maxlength="200" autocomplete="off" '
        'aria-invalid="true"' in html
    )
    assert "Row 3: enter the medicine&#x27;s name" in html


def test_med_list_allows_at_most_50_rows():
    rows = [{"name": f"Med {i}", "dose": "", "frequency": ""} for i in range(51)]
    form = make_form(
        "medications", post_data("medications", quiet_answers(med_none=False, medications=rows))
    )
    assert not form.is_valid()
    rows = rows[:50]
    form = make_form(
        "medications", post_data("medications", quiet_answers(med_none=False, medications=rows))
    )
    assert form.is_valid(), form.errors


def test_med_list_needs_a_row_unless_med_none():
    form = make_form("medications", post_data("medications", quiet_answers(med_none=False)))
    assert not form.is_valid()
    assert "medications" in form.errors
    form = make_form(
        "medications",
        post_data(
            "medications",
            quiet_answers(
                med_none=True, medications=[{"name": "Aspirin", "dose": "", "frequency": ""}]
            ),
        ),
    )
    assert form.is_valid(), form.errors
    assert "medications" not in form.answers
    assert form.answers["med_none"] is True


def test_attestation_must_be_ticked():
    assert not make_form("review", {}).is_valid()
    assert make_form("review", {"review-staff_attestation": "on"}).is_valid()


def test_text_is_stripped_and_whitespace_only_is_unanswered():
    form = form_for("patient", extra={"patient-first_name": "  Ana  ", "patient-mrn": "   "})
    assert form.is_valid()
    assert form.answers["first_name"] == "Ana"
    assert "mrn" not in form.answers
    form = form_for("patient", extra={"patient-last_name": "   "})
    assert not form.is_valid()


def test_text_length_limit():
    form = form_for("patient", extra={"patient-first_name": "x" * 101})
    assert not form.is_valid()


def test_a_line_break_counts_as_one_character_as_in_the_browser():
    # 497 characters and 3 line breaks: 500 in the textarea, 503 as posted (CR LF).
    text = "a" * 200 + "\r\n" + "b" * 200 + "\r\n" + "c" * 96 + "\r\n" + "d"
    form = form_for("allergies", extra={"allergies-alg_other": text})
    assert form.is_valid(), form.errors
    assert form.answers["alg_other"] == text.replace("\r\n", "\n")
    assert len(form.answers["alg_other"]) == 500
    over = form_for("allergies", extra={"allergies-alg_other": text + "e"})
    assert not over.is_valid()
    assert "501" in str(over.errors["alg_other"])


def test_a_lone_carriage_return_is_a_line_break():
    form = form_for("allergies", extra={"allergies-alg_other": "Penicillin\rLatex"})
    assert form.is_valid(), form.errors
    assert form.answers["alg_other"] == "Penicillin\nLatex"


def test_unknown_choice_is_rejected():
    form = form_for("patient", extra={"patient-sex_at_birth": "robot"})
    assert not form.is_valid()


def questions_of(helper):
    """Return the ``Question`` blocks of a step's layout (not its group headings)."""
    return [part for part in helper.layout.fields if isinstance(part, Question)]


def test_mood_step_heads_each_instrument_before_its_first_item():
    helper = step_form_helper("mood")
    codes = instrument.STEPS_BY_SLUG["mood"].codes
    assert [q.question["code"] for q in questions_of(helper)] == list(codes)
    order = [
        part.markup if isinstance(part, GroupHeading) else part.question["code"]
        for part in helper.layout.fields
    ]
    headings = [
        index for index, part in enumerate(order) if not isinstance(part, str) or "<h2" in part
    ]
    assert len(headings) == 3
    for index, (first, title) in zip(
        headings,
        [
            ("phq9_1", "Depression (PHQ-9)"),
            ("gad7_1", "Anxiety (GAD-7)"),
            ("cssrs_1", "Suicide-risk screen (C-SSRS screener)"),
        ],
        strict=True,
    ):
        assert f'<h2 class="h4 mb-1">{title}</h2>' in order[index]
        assert order[index + 1] == first
    page = make_form("mood", {})
    html = "".join(str(part.render(page, Context())) for part in helper.layout.fields)
    assert html.count("<h2") == 3
    assert html.index("Anxiety (GAD-7)") < html.index('data-question="gad7_1"')
    # Other steps have no group headings.
    assert all(isinstance(part, Question) for part in step_form_helper("vitals").layout.fields)


@pytest.mark.parametrize("slug", instrument.STEP_SLUGS)
def test_no_step_or_heading_starts_with_a_question_that_can_be_hidden(slug):
    # app.css draws the rule between questions over each but the first of a step or a
    # heading: a hidden first one would leave the next one's rule under the heading.
    parts = step_form_helper(slug).layout.fields
    firsts = [parts[0]] + [
        part for before, part in itertools.pairwise(parts) if isinstance(before, GroupHeading)
    ]
    for part in firsts:
        if isinstance(part, Question):
            assert instrument.question(part.question["code"]).shown_when is None, part.question


@pytest.mark.parametrize("slug", [s.slug for s in instrument.STEPS if s.slug != "pregnancy"])
def test_cached_question_markup_equals_a_fresh_render(slug):
    """Question.render reuses markup rendered once; it must equal a full render every time."""
    helper = step_form_helper(slug)
    blank = make_form(slug, {})  # unbound values: nothing ticked, nothing typed
    filled = form_for(slug)
    assert filled.is_valid(), filled.errors
    for form in (blank, filled, blank):
        for question in questions_of(helper):
            bound = form[question.question["code"]]
            rendered = question.render(form, Context())
            assert rendered == question.render_template(bound, question.inner(bound))
            assert INNER_MARKER not in rendered
            assert f'data-question="{bound.name}"' in rendered


def test_question_with_errors_is_rendered_fresh_with_its_messages():
    form = make_form("vitals", {"vitals-vit_sbp": "abc"})
    assert not form.is_valid()
    question = next(
        q for q in step_form_helper("vitals").layout.fields if q.question["code"] == "vit_sbp"
    )
    first = question.render(form, Context())
    assert "is-invalid" in first and 'aria-invalid="true"' in first and "vit_sbp_error" in first
    clean = question.render(make_form("vitals", {"vitals-vit_sbp": "120"}), Context())
    assert "is-invalid" not in clean and "_error" not in clean and 'value="120"' in clean


def _field_state(field):
    widget = field.widget
    return (
        type(field),
        str(field.label),
        field.required,
        str(field.help_text),
        repr(getattr(field, "choices", None)),
        type(widget),
        dict(widget.attrs),
        widget.is_required,
        repr(getattr(widget, "choices", None)),
    )


@pytest.mark.parametrize("slug", [s.slug for s in instrument.STEPS])
def test_forms_share_their_fields_and_never_change_them(slug):
    """Step forms share field objects (no deep copy): using a form must not change them."""
    form_class = step_form_class(slug)
    before = {code: _field_state(field) for code, field in form_class.base_fields.items()}
    helper = step_form_helper(slug)
    bad = {f"{slug}-{code}": "\x00not a valid value" for code in form_class.base_fields}
    for form in (
        make_form(slug, bad),
        form_for(slug) if slug != "pregnancy" else make_form(slug, {}),
    ):
        form.is_valid()
        for question in helper.layout.fields:
            question.render(form, Context())
        assert (
            form.fields[next(iter(form.fields))] is form_class.base_fields[next(iter(form.fields))]
        )
    after = {code: _field_state(field) for code, field in form_class.base_fields.items()}
    assert after == before


AWKWARD_VALUES = [
    None,
    "",
    "  ",
    "a <b> & \"c\" 'd'",
    "ünïcødé ✓ 中文",
    "x" * 600,
    0,
    -1,
    Decimal("72.50"),
    dt.date(1980, 2, 29),
    dt.datetime(2026, 11, 22, 8, 5, tzinfo=dt.UTC),
    True,
    False,
]


def python_written_widgets(slug):
    return {
        code: field.widget
        for code, field in step_form_class(slug).base_fields.items()
        if isinstance(field.widget, PythonMarkup)
    }


STEPS_WITH_INPUTS = [s.slug for s in instrument.STEPS if python_written_widgets(s.slug)]


def test_every_input_kind_is_written_in_python():
    kinds = {
        type(widget).__name__
        for slug in STEPS_WITH_INPUTS
        for widget in python_written_widgets(slug).values()
    }
    assert kinds == {
        "TextInput",
        "NumberInput",
        "DateInput",
        "DateTimeInput",
        "CheckboxInput",
        "Textarea",
    }


@pytest.mark.parametrize("slug", STEPS_WITH_INPUTS)
def test_python_written_inputs_equal_djangos_templates(slug):
    """Every input written in Python is exactly what Django's widget templates write."""
    python_written = python_written_widgets(slug)
    bad = {f"{slug}-{code}": '<"bad">\u00e9' for code in python_written}
    forms_ = [make_form(slug, {}), make_form(slug, bad)]
    if slug != "pregnancy":
        forms_.append(form_for(slug))
    compared = 0
    for form in forms_:
        form.is_valid()
        for code, widget in python_written.items():
            bound = form[code]
            for extra in ({}, {"class": "form-control is-invalid"}):
                attrs = bound.build_widget_attrs(dict(extra), widget)
                attrs.setdefault("id", bound.auto_id)
                values = [bound.value(), *AWKWARD_VALUES]
                for value in values:
                    ours = widget.render(bound.html_name, value, attrs, form.renderer)
                    djangos = forms.Widget.render(
                        widget, bound.html_name, value, attrs, form.renderer
                    )
                    assert ours == djangos, (code, value)
                    compared += 1
    assert compared >= len(python_written) * 2 * len(AWKWARD_VALUES)


@pytest.mark.parametrize(
    ("code", "side"), [("vit_sbp", "max"), ("vit_sbp", "min"), ("vit_neck_cm", "max")]
)
def test_a_number_out_of_range_is_told_the_whole_range(code, side):
    q = instrument.QUESTIONS[code]
    value = q.max_value + 1 if side == "max" else q.min_value - 1
    form = form_for("vitals", **{code: value})
    assert not form.is_valid()
    assert form.errors[code] == [f"Enter a number from {q.min_value} to {q.max_value}."]


def test_every_number_question_has_a_range_to_name():
    numbers = [
        q for q in instrument.QUESTIONS.values() if q.type in (instrument.INT, instrument.DECIMAL)
    ]
    assert numbers
    for q in numbers:
        assert q.min_value is not None and q.max_value is not None, q.code
