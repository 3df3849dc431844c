"""Tests of the instrument definition (intake/instrument.py): pure, no database."""

import datetime as dt
import json
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from intake import instrument as ins
from intake.thresholds import DEFAULTS

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

# INSTRUMENT.md 3.15.
SPEC_COUNTS = {
    "patient": 7,
    "vitals": 10,
    "pregnancy": 6,
    "cardiovascular": 12,
    "neurological": 9,
    "allergies": 7,
    "medications": 4,
    "psychiatric": 8,
    "mood": 23,
    "alcohol": 13,
    "substances": 10,
    "other_conditions": 13,
    "logistics": 5,
    "review": 1,
}

PREGNANCY_CODES = (
    "preg_potential",
    "preg_status",
    "preg_planning",
    "preg_contraception",
    "preg_breastfeeding",
    "lab_preg_test",
)


def shown(code, answers, thresholds=DEFAULTS):
    return ins.is_shown(code, answers, thresholds)


# --- structure -------------------------------------------------------------


def test_steps_are_in_wizard_order():
    assert tuple(SPEC_COUNTS) == ins.STEP_SLUGS


@pytest.mark.parametrize(("slug", "count"), SPEC_COUNTS.items())
def test_question_count_per_step_matches_spec(slug, count):
    assert len(ins.STEPS_BY_SLUG[slug].questions) == count


def test_instrument_has_128_questions():
    assert len(ins.QUESTIONS) == 128
    assert sum(len(step.questions) for step in ins.STEPS) == 128


def test_codes_are_unique_snake_case():
    codes = [q.code for step in ins.STEPS for q in step.questions]
    assert len(codes) == len(set(codes))
    assert all(SNAKE.match(code) for code in codes), [c for c in codes if not SNAKE.match(c)]


@pytest.mark.parametrize("q", list(ins.QUESTIONS.values()), ids=lambda q: q.code)
def test_choice_keys_are_snake_case_and_unique_per_question(q):
    keys = [choice.key for choice in q.choices]
    assert len(keys) == len(set(keys))
    if q.type == ins.SCALE:
        assert all(isinstance(key, int) for key in keys)
        assert keys == list(range(len(keys)))
    else:
        assert all(isinstance(key, str) and SNAKE.match(key) for key in keys)
    if q.type in (ins.YNU, ins.YN, ins.SINGLE, ins.MULTI, ins.SCALE):
        assert keys, "choice questions need choices"
    assert all(choice.label for choice in q.choices)


def test_every_question_has_a_label_and_a_basis():
    for q in ins.QUESTIONS.values():
        assert q.label and q.basis, q.code


def test_conditions_refer_only_to_earlier_questions():
    order = {code: i for i, code in enumerate(ins.QUESTIONS)}
    for q in ins.QUESTIONS.values():
        if q.shown_when is not None:
            assert all(order[c] < order[q.code] for c in q.shown_when.codes()), q.code
    for step in ins.STEPS:
        if step.applies_when is not None:
            first = order[step.questions[0].code]
            assert all(order[c] < first for c in step.applies_when.codes()), step.slug


def test_phq9_and_gad7_use_the_frequency_anchors():
    for code in [f"phq9_{i}" for i in range(1, 10)] + [f"gad7_{i}" for i in range(1, 8)]:
        q = ins.question(code)
        assert q.type == ins.SCALE and q.required and q.shown_when is None
        assert [(c.key, c.label) for c in q.choices] == [
            (0, "Not at all"),
            (1, "Several days"),
            (2, "More than half the days"),
            (3, "Nearly every day"),
        ]


def test_audit_c_items_have_their_own_anchors():
    assert ins.question("audc_1").choice_label(4) == "4 or more times a week"
    assert ins.question("audc_2").choice_label(0) == "1-2"
    assert ins.question("audc_3").choice_label(4) == "Daily or almost daily"


def test_substance_items_share_the_recency_choices():
    codes = [q.code for q in ins.STEPS_BY_SLUG["substances"].questions if q.code.startswith("sub_")]
    recency = [c for c in codes if c not in ("sub_tx_active", "sub_tx_detail")]
    assert len(recency) == 7
    for code in recency:
        assert [c.key for c in ins.question(code).choices] == [
            "never",
            "gt_12m",
            "past_12m",
            "past_30d",
        ]
    assert ins.STEPS_BY_SLUG["substances"].intro == "Most recent non-medical use of:"


def test_medication_step_semantics():
    med_none = ins.question("med_none")
    assert med_none.type == ins.BOOL and not med_none.required
    assert ins.question("medications").type == ins.MED_LIST
    assert ins.question("medications").required
    assert ins.question("staff_attestation").type == ins.BOOL
    assert ins.question("staff_attestation").required
    assert (ins.MED_MAX_ROWS, ins.MED_NAME_MAX, ins.MED_FIELD_MAX) == (50, 200, 100)


def test_vitals_ranges_and_precision():
    sbp = ins.question("vit_sbp")
    assert (sbp.min_value, sbp.max_value, sbp.plausible_min, sbp.plausible_max) == (
        50,
        300,
        70,
        250,
    )
    assert ins.question("vit_dbp").less_than == "vit_sbp"
    assert ins.question("vit_bp_repeat_dbp").less_than == "vit_bp_repeat_sbp"
    assert ins.question("vit_bac").decimal_places == 3
    assert ins.question("vit_weight_kg").max_value == Decimal("350.0")


def test_date_flags():
    assert ins.question("date_of_birth").not_future
    assert ins.question("alc_last_drink").not_future
    for code in ("cv_mi_date", "neuro_stroke_date", "neuro_tbi_date"):
        assert ins.question(code).past_event and not ins.question(code).required


def test_exclusive_keys():
    assert frozenset({"none", "unsure", "not_done", "negative"}) == ins.EXCLUSIVE_KEYS
    lab_uds = {c.key for c in ins.question("lab_uds").choices}
    assert {"not_done", "negative"} <= lab_uds


# --- branching -------------------------------------------------------------

# (code, answers that show it, answers that hide it): every "shown when".
VISIBILITY = [
    ("indication_other", {"indication": ["aud", "other"]}, {"indication": ["aud"]}),
    ("indication_other", {"indication": ["other"]}, {}),
    ("vit_bp_repeat_sbp", {"vit_sbp": 141, "vit_dbp": 80}, {"vit_sbp": 140, "vit_dbp": 90}),
    ("vit_bp_repeat_dbp", {"vit_sbp": 130, "vit_dbp": 91}, {"vit_sbp": 130, "vit_dbp": 90}),
    ("vit_bp_repeat_sbp", {"vit_dbp": 91}, {}),
    ("preg_potential", {"sex_at_birth": "female"}, {"sex_at_birth": "male"}),
    ("preg_status", {"preg_potential": "yes"}, {"preg_potential": "no"}),
    ("preg_status", {"preg_potential": "unsure"}, {}),
    ("preg_planning", {"preg_potential": "unsure"}, {"preg_potential": "no"}),
    ("preg_contraception", {"preg_potential": "unsure"}, {"preg_potential": "no"}),
    (
        "preg_breastfeeding",
        {"sex_at_birth": "intersex"},
        {"sex_at_birth": "male", "preg_potential": "yes"},
    ),
    ("lab_preg_test", {"preg_potential": "unsure"}, {"preg_potential": "no"}),
    (
        "lab_preg_test",
        {"sex_at_birth": "not_stated", "preg_potential": "yes"},
        {"sex_at_birth": "male", "preg_potential": "yes"},
    ),
    ("cv_htn_controlled", {"cv_htn": "yes"}, {"cv_htn": "unsure"}),
    ("cv_htn_controlled", {"cv_htn": "yes"}, {"cv_htn": "no"}),
    ("cv_mi_date", {"cv_mi": "yes"}, {"cv_mi": "unsure"}),
    ("neuro_stroke_date", {"neuro_stroke_tia": "yes"}, {"neuro_stroke_tia": "no"}),
    ("neuro_tbi_date", {"neuro_tbi": "yes"}, {"neuro_tbi": "unsure"}),
    ("neuro_tbi_symptoms", {"neuro_tbi": "yes"}, {"neuro_tbi": "no"}),
    ("ket_prior_adverse", {"ket_prior_med": "yes"}, {"ket_prior_med": "unsure"}),
    ("ket_recent_course", {"ket_prior_med": "yes"}, {"ket_prior_med": "unsure"}),
    ("anes_complications_detail", {"anes_complications": "yes"}, {"anes_complications": "no"}),
    ("medications", {"med_none": False}, {"med_none": True}),
    ("medications", {}, {"med_none": True}),
    ("med_benzo_dzeq", {"med_none": False}, {"med_none": True}),
    ("psy_psychosis_now", {"psy_psychosis_ever": "unsure"}, {"psy_psychosis_ever": "no"}),
    ("psy_psychosis_now", {"psy_psychosis_ever": "yes"}, {}),
    ("psy_mood_stabilizer", {"psy_dx": ["bipolar_2"]}, {"psy_dx": ["mdd"]}),
    ("psy_mood_stabilizer", {"psy_dx": ["bipolar_1"]}, {"indication": ["depression"]}),
    ("psy_mood_stabilizer", {"indication": ["bipolar_depression"]}, {"psy_dx": ["none"]}),
    ("psy_ad_trials", {"indication": ["depression"]}, {"indication": ["aud"]}),
    ("psy_ad_trials", {"indication": ["bipolar_depression"]}, {}),
    ("psy_neuromod", {"indication": ["ptsd", "depression"]}, {"indication": ["ptsd"]}),
    ("cssrs_3", {"cssrs_2": "yes"}, {"cssrs_2": "no"}),
    ("cssrs_4", {"cssrs_2": "yes"}, {"cssrs_2": "no"}),
    ("cssrs_5", {"cssrs_2": "yes"}, {"cssrs_1": "yes", "cssrs_2": "no"}),
    ("cssrs_6_3mo", {"cssrs_6": "yes"}, {"cssrs_6": "no"}),
    ("audc_2", {"audc_1": 1}, {"audc_1": 0}),
    ("audc_3", {"audc_1": 4}, {"audc_1": 0, "indication": ["aud"]}),
    ("alc_last_drink_unknown", {"audc_1": 1}, {"audc_1": 0}),
    ("alc_last_drink_unknown", {"audc_1": 0, "indication": ["aud"]}, {"indication": ["other"]}),
    (
        "alc_last_drink",
        {"audc_1": 2, "alc_last_drink_unknown": "no"},
        {"audc_1": 2, "alc_last_drink_unknown": "yes"},
    ),
    (
        "alc_last_drink",
        {"indication": ["aud"], "audc_1": 0, "alc_last_drink_unknown": "no"},
        {"audc_1": 0, "alc_last_drink_unknown": "no"},
    ),
    ("alc_last_drink", {"audc_1": 2, "alc_last_drink_unknown": "no"}, {"audc_1": 2}),
    ("alc_daily", {"indication": ["aud"]}, {"audc_1": 0}),
    ("alc_morning", {"audc_1": 3}, {"audc_1": 0}),
    ("aw_sx_now", {"audc_1": 1}, {"audc_1": 0}),
    ("aw_hx_seizure", {"audc_1": 1}, {}),
    ("aw_hx_dt", {"indication": ["aud"]}, {"audc_1": 0}),
    ("aw_prior_episodes", {"audc_1": 1}, {"audc_1": 0}),
    ("aw_pawss", {"audc_1": 1}, {"audc_1": 0}),
    ("ciwa_ar", {"audc_1": 1}, {"audc_1": 0}),
    ("sub_tx_detail", {"sub_tx_active": "yes"}, {"sub_tx_active": "no"}),
    ("sb_snore", {"resp_osa": "no"}, {"resp_osa": "yes_treated_cpap"}),
    ("sb_tired", {"resp_osa": "unsure"}, {"resp_osa": "yes_untreated"}),
    ("sb_observed", {"resp_osa": "unsure"}, {}),
]


@pytest.mark.parametrize(("code", "show", "hide"), VISIBILITY)
def test_shown_when_condition_fires_and_stays_silent(code, show, hide):
    assert shown(code, show)
    assert not shown(code, hide)


def test_visibility_table_covers_every_condition():
    conditional = {q.code for q in ins.QUESTIONS.values() if q.shown_when is not None}
    assert conditional <= {code for code, _show, _hide in VISIBILITY}


@pytest.mark.parametrize(
    ("sex", "applies"),
    [("female", True), ("intersex", True), ("not_stated", True), ("male", False), (None, True)],
)
def test_pregnancy_step_applies_unless_male(sex, applies):
    answers = {} if sex is None else {"sex_at_birth": sex}
    step = ins.STEPS_BY_SLUG["pregnancy"]
    assert step.applies_when is ins.PREGNANCY_STEP_APPLIES
    assert ins.step_applies(step, answers, DEFAULTS) is applies
    assert shown("preg_potential", answers) is applies


def test_bp_repeat_follows_the_configured_thresholds():
    answers = {"vit_sbp": 141, "vit_dbp": 80}
    assert ins.BP_REPEAT_NEEDED(answers, DEFAULTS)
    assert not ins.BP_REPEAT_NEEDED(answers, {**DEFAULTS, "bp_caution_sbp": 141})


def test_unsure_pregnancy_potential_opens_follow_ups():
    answers = {"sex_at_birth": "female", "preg_potential": "unsure"}
    for code in ("preg_status", "preg_planning", "preg_contraception", "lab_preg_test"):
        assert shown(code, answers)


def test_unsure_psychosis_history_opens_current_psychosis():
    assert shown("psy_psychosis_now", {"psy_psychosis_ever": "unsure"})


def test_unsure_sleep_apnea_opens_stop_bang():
    for code in ("sb_snore", "sb_tired", "sb_observed"):
        assert shown(code, {"resp_osa": "unsure"})


def test_unsure_prior_ketamine_does_not_open_follow_ups():
    for code in ("ket_prior_adverse", "ket_recent_course"):
        assert not shown(code, {"ket_prior_med": "unsure"})


def test_unanswered_means_shown_and_absent():
    assert ins.unanswered("preg_status", {"preg_potential": "yes"}, DEFAULTS)
    assert not ins.unanswered("preg_status", {"preg_potential": "no"}, DEFAULTS)
    assert not ins.unanswered(
        "preg_status", {"preg_potential": "yes", "preg_status": "no"}, DEFAULTS
    )


# --- prune_hidden ----------------------------------------------------------


def test_changing_sex_to_male_drops_all_pregnancy_answers():
    answers = {
        "sex_at_birth": "female",
        "preg_potential": "yes",
        "preg_status": "no",
        "preg_planning": "no",
        "preg_contraception": "yes",
        "preg_breastfeeding": "no",
        "lab_preg_test": "negative",
        "cv_htn": "no",
    }
    kept = ins.prune_hidden({**answers, "sex_at_birth": "male"}, DEFAULTS)
    assert not set(PREGNANCY_CODES) & set(kept)
    assert kept == {"sex_at_birth": "male", "cv_htn": "no"}
    assert ins.prune_hidden(answers, DEFAULTS) == answers


def test_cssrs_2_no_drops_items_3_to_5():
    answers = {"cssrs_1": "yes", "cssrs_2": "yes", "cssrs_3": "yes", "cssrs_4": "no"}
    answers.update(cssrs_5="no", cssrs_6="no")
    kept = ins.prune_hidden({**answers, "cssrs_2": "no"}, DEFAULTS)
    assert kept == {"cssrs_1": "yes", "cssrs_2": "no", "cssrs_6": "no"}


def test_prune_cascades_through_chained_conditions():
    answers = {"audc_1": 2, "audc_2": 1, "alc_last_drink_unknown": "no", "alc_daily": "no"}
    answers["alc_last_drink"] = dt.datetime(2025, 1, 1, 20, 0, tzinfo=dt.UTC)
    assert ins.prune_hidden({**answers, "audc_1": 0}, DEFAULTS) == {"audc_1": 0}


def test_med_none_true_drops_the_medication_list():
    answers = {
        "med_none": True,
        "medications": [{"name": "sertraline", "dose": "", "frequency": ""}],
        "med_benzo_dzeq": Decimal("5.0"),
        "med_reviewed_with_patient": "yes",
    }
    assert ins.prune_hidden(answers, DEFAULTS) == {
        "med_none": True,
        "med_reviewed_with_patient": "yes",
    }


# --- codec -----------------------------------------------------------------

ONE_OF_EACH = {
    "first_name": "Ada",
    "date_of_birth": dt.date(1980, 2, 29),
    "sex_at_birth": "female",
    "indication": ["aud", "depression"],
    "vit_sbp": 150,
    "vit_weight_kg": Decimal("72.5"),
    "vit_bac": Decimal("0.010"),
    "preg_potential": "unsure",
    "med_none": False,
    "medications": [
        {"name": "sertraline", "dose": "50 mg", "frequency": "daily"},
        {"name": "St John's wort", "dose": "", "frequency": ""},
    ],
    "cssrs_1": "no",
    "phq9_1": 2,
    "audc_1": 3,
    "alc_last_drink": dt.datetime(2025, 3, 9, 22, 30, tzinfo=ZoneInfo("America/New_York")),
    "staff_attestation": True,
}


def test_one_of_each_covers_every_type():
    assert {ins.question(code).type for code in ONE_OF_EACH} == {
        ins.YNU,
        ins.YN,
        ins.SINGLE,
        ins.MULTI,
        ins.SCALE,
        ins.INT,
        ins.DECIMAL,
        ins.DATE,
        ins.DATETIME,
        ins.TEXT,
        ins.BOOL,
        ins.MED_LIST,
    }


def test_codec_round_trips_every_type():
    encoded = ins.encode_answers(ONE_OF_EACH)
    text = json.dumps(encoded)
    decoded = ins.decode_answers(json.loads(text))
    assert decoded == ONE_OF_EACH
    assert decoded["vit_bac"].as_tuple().exponent == -3
    assert decoded["alc_last_drink"].utcoffset() == dt.timedelta(hours=-4)
    assert list(encoded) == [code for code in ins.QUESTIONS if code in ONE_OF_EACH]


def test_decode_quantizes_decimals_and_drops_unknown_codes():
    decoded = ins.decode_answers({"vit_weight_kg": "72.50", "not_a_code": 1})
    assert decoded == {"vit_weight_kg": Decimal("72.5")}
    assert str(decoded["vit_weight_kg"]) == "72.5"


# --- display_value ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "text"),
    [
        ("sex_at_birth", "not_stated", "Not stated"),
        ("cv_htn", "unsure", "Unsure"),
        ("phq9_9", 2, "More than half the days"),
        ("indication", ["aud", "other"], "Alcohol use disorder, Other"),
        ("med_none", True, "Yes"),
        ("staff_attestation", False, "No"),
        ("date_of_birth", dt.date(1980, 2, 29), "1980-02-29"),
        ("vit_weight_kg", Decimal("72.5"), "72.5"),
        ("sub_cannabis", "past_12m", "In the past 12 months, but not in the past 30 days"),
        (
            "medications",
            [{"name": "sertraline", "dose": "50 mg", "frequency": ""}],
            "sertraline 50 mg",
        ),
    ],
)
def test_display_value(code, value, text):
    assert ins.display_value(code, value) == text


def test_display_value_renders_datetimes_in_the_given_zone():
    value = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert ins.display_value("alc_last_drink", value, tz=ZoneInfo("America/Chicago")) == (
        "2025-06-01 07:00 CDT"
    )
    assert ins.display_value("alc_last_drink", value) == "2025-06-01 12:00 UTC"


# --- visibility_json -------------------------------------------------------


def test_visibility_json_is_json_safe_and_uses_numbers_only():
    data = ins.visibility_json(DEFAULTS)
    text = json.dumps(data)
    assert not any(name in text for name in DEFAULTS)
    assert set(data["steps"]) == set(ins.STEP_SLUGS)
    assert data["steps"]["patient"] is None
    assert data["steps"]["pregnancy"] is not None
    assert set(data["questions"]) == {
        q.code for q in ins.QUESTIONS.values() if q.shown_when is not None
    }
    assert '"value": 140' in json.dumps(data["questions"]["vit_bp_repeat_sbp"])


def test_visibility_json_follows_changed_thresholds():
    data = ins.visibility_json({**DEFAULTS, "bp_caution_sbp": 150})
    args = data["questions"]["vit_bp_repeat_sbp"]["args"]
    assert args[0]["value"] == 150


# --- step_complete ---------------------------------------------------------


def step(slug):
    return ins.STEPS_BY_SLUG[slug]


def test_step_complete_requires_shown_required_questions():
    answers = {"first_name": "Ada", "last_name": "L", "date_of_birth": dt.date(1980, 1, 1)}
    answers.update(sex_at_birth="male", indication=["other"])
    assert not ins.step_complete(step("patient"), answers, DEFAULTS)
    answers["indication_other"] = "chronic pain"
    assert ins.step_complete(step("patient"), answers, DEFAULTS)


def test_pregnancy_step_is_complete_when_it_does_not_apply():
    assert ins.step_complete(step("pregnancy"), {"sex_at_birth": "male"}, DEFAULTS)
    assert not ins.step_complete(step("pregnancy"), {"sex_at_birth": "female"}, DEFAULTS)


def test_switching_to_female_makes_pregnancy_step_incomplete():
    answers = {"sex_at_birth": "female", "preg_potential": "no", "preg_breastfeeding": "no"}
    assert ins.step_complete(step("pregnancy"), answers, DEFAULTS)
    answers["preg_potential"] = "unsure"
    assert not ins.step_complete(step("pregnancy"), answers, DEFAULTS)


@pytest.mark.parametrize(
    ("answers", "complete"),
    [
        ({}, False),
        ({"med_reviewed_with_patient": "yes"}, False),
        ({"med_none": True}, False),
        ({"med_none": True, "med_reviewed_with_patient": "no"}, True),
        ({"med_none": False, "med_reviewed_with_patient": "yes"}, False),
        (
            {
                "med_none": False,
                "medications": [{"name": "x", "dose": "", "frequency": ""}],
                "med_reviewed_with_patient": "yes",
            },
            True,
        ),
    ],
)
def test_medications_step_complete(answers, complete):
    assert ins.step_complete(step("medications"), answers, DEFAULTS) is complete


def test_review_step_needs_attestation_true():
    assert not ins.step_complete(step("review"), {}, DEFAULTS)
    assert not ins.step_complete(step("review"), {"staff_attestation": False}, DEFAULTS)
    assert ins.step_complete(step("review"), {"staff_attestation": True}, DEFAULTS)


def test_optional_questions_do_not_block_completion():
    answers = {"vit_sbp": 120, "vit_dbp": 80, "vit_hr": 70, "vit_spo2": 98}
    answers.update(vit_weight_kg=Decimal("70.0"), vit_height_cm=Decimal("170.0"))
    assert ins.step_complete(step("vitals"), answers, DEFAULTS)
    answers["vit_sbp"] = 141
    assert not ins.step_complete(step("vitals"), answers, DEFAULTS)
