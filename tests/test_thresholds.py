"""Threshold bounds: a clinic's cut-off stays within the range of what it is compared with."""

import re

import pytest
from django.urls import reverse

from intake import instrument, reviews, thresholds
from intake.models import ThresholdSet
from intake.services import IntakeError
from tests.test_admin import threshold_post

# Thresholds compared with one answer: their bounds are that answer's hard range.
ANSWER_OF = {
    "bp_caution_sbp": "vit_sbp",
    "bp_review_sbp": "vit_sbp",
    "bp_caution_dbp": "vit_dbp",
    "bp_review_dbp": "vit_dbp",
    "hr_review": "vit_hr",
    "hr_caution": "vit_hr",
    "spo2_caution": "vit_spo2",
    "qtc_caution_male": "ecg_qtc_ms",
    "qtc_caution_female": "ecg_qtc_ms",
    "stopbang_neck_cm": "vit_neck_cm",
}
# Thresholds compared with a total: at most its maximum score.
MAXIMUM_OF = {
    "ciwa_review": instrument.QUESTIONS["ciwa_ar"].max_value,
    "pawss_review": instrument.QUESTIONS["aw_pawss"].max_value,
    "withdrawal_episodes": instrument.QUESTIONS["aw_prior_episodes"].max_value,
    "npo_solid_hours": instrument.QUESTIONS["log_last_solid_h"].max_value,
    "phq9_severe": 3 * len(instrument.PHQ9_ITEMS),
    "gad7_significant": 3 * len(instrument.GAD7_ITEMS),
    "audc_positive_male": 3 * 4,  # three items scored 0-4
    "audc_positive_other": 3 * 4,
    "stopbang_high": 8,  # S, T, O, P, B, A, N, G
    "stopbang_intermediate": 8,
}


def test_every_threshold_has_bounds_holding_its_default():
    assert set(thresholds.BOUNDS) == set(thresholds.SPEC)
    for name, (lowest, highest) in thresholds.BOUNDS.items():
        assert lowest <= thresholds.DEFAULTS[name] <= highest, name
    assert thresholds.consistency_errors(thresholds.DEFAULTS) == {}


@pytest.mark.parametrize(("name", "code"), ANSWER_OF.items())
def test_bounds_are_the_compared_answers_hard_range(name, code):
    question = instrument.QUESTIONS[code]
    assert thresholds.BOUNDS[name] == (question.min_value, question.max_value)


@pytest.mark.parametrize(("name", "maximum"), MAXIMUM_OF.items())
def test_bounds_end_at_the_compared_totals_maximum(name, maximum):
    assert thresholds.BOUNDS[name][1] == maximum


@pytest.mark.parametrize("name", thresholds.SPEC)
def test_a_value_just_outside_its_bounds_is_refused_and_the_bounds_themselves_are_not(name):
    lowest, highest = thresholds.BOUNDS[name]
    for value in (lowest - 1, highest + 1):
        errors = thresholds.consistency_errors(thresholds.with_defaults({name: value}))
        assert f"{name} must be from {lowest} to {highest}" in errors[name]
    # At its bounds a value may still clash with its pair (review above caution), nothing else.
    for value in (lowest, highest):
        errors = thresholds.consistency_errors(thresholds.with_defaults({name: value}))
        assert not any("must be from" in message for message in errors.values()), errors


def test_a_typo_cannot_switch_a_flag_off_through_the_service(clinic_admin):
    with pytest.raises(IntakeError, match="hr_review must be from 30 to 220 beats/min"):
        reviews.save_thresholds(
            values=dict(thresholds.DEFAULTS, hr_review=1200),
            user=clinic_admin,
            based_on_version=0,
            note="typo",
        )
    assert not ThresholdSet.objects.exists()


def test_the_threshold_form_says_which_values_are_out_of_bounds(client, clinic_admin):
    client.force_login(clinic_admin)
    data = threshold_post(hr_review="1200", phq9_severe="28", spo2_caution="150", note="x")
    response = client.post(reverse("admin:intake_thresholdset_add"), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "hr_review must be from 30 to 220 beats/min" in body
    assert "phq9_severe must be from 1 to 27 points" in body
    assert "spo2_caution must be from 50 to 100 %" in body
    assert not ThresholdSet.objects.exists()


def test_the_threshold_form_states_each_values_allowed_range(client, clinic_admin):
    client.force_login(clinic_admin)
    body = client.get(reverse("admin:intake_thresholdset_add")).content.decode()
    assert (
        "beats/min · default 130 · from 30 to 220 · HR-01 flags a heart rate above this; "
        "HR-02 covers those up to it."
    ) in body
    assert "points · default 20 · from 1 to 27 · SCL-01 flags a PHQ-9 total at or above" in body


def test_each_thresholds_description_names_every_rule_that_uses_it():
    assert set(thresholds.DESCRIPTIONS) == set(thresholds.SPEC)
    for name, (_default, _unit, used_by) in thresholds.SPEC.items():
        for rule_id in re.findall(r"[A-Z]+\d*-\d{2}", used_by):
            assert rule_id in thresholds.DESCRIPTIONS[name], (name, rule_id)


def test_the_thresholds_in_force_say_what_each_does(client, clinic_admin):
    client.force_login(clinic_admin)
    body = client.get(reverse("admin:intake_thresholdset_changelist")).content.decode()
    assert "What it does" in body
    assert "SPO2-01 flags a saturation below this." in body


def test_unverified_defaults_and_stopbang_items_carry_section_5s_notes():
    unverified = {
        "hr_caution",
        "spo2_caution",
        "qtc_caution_male",
        "qtc_caution_female",
        "withdrawal_episodes",
        "pawss_review",
        "npo_solid_hours",
    }
    stopbang = {"stopbang_bmi", "stopbang_age", "stopbang_neck_cm"}
    for name, text in thresholds.DESCRIPTIONS.items():
        assert ("Unverified default" in text) is (name in unverified), name
        assert ("validated STOP-Bang tool" in text) is (name in stopbang), name
