"""FHIR R4 handoff: the instrument as a Questionnaire, a screening as a QuestionnaireResponse."""

import datetime as dt

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from intake import fhir, instrument
from intake.models import Addendum
from intake.thresholds import DEFAULTS
from tests.factories import make_screening
from tests.pdf_factories import build_screening, realistic_answers


def walk(items):
    for item in items:
        yield item
        yield from walk(item.get("item", []))


def answered_link_ids(response):
    return {
        item["linkId"]
        for item in walk(response["item"])
        if not item["linkId"].startswith("step-") and "." not in item["linkId"]
    }


def items_by_link_id(resource):
    found = {}
    for item in walk(resource["item"]):
        found.setdefault(item["linkId"], []).append(item)
    return found


@pytest.fixture
def questionnaire():
    return fhir.questionnaire(dict(DEFAULTS))


def test_questionnaire_validates_as_r4b(questionnaire):
    Questionnaire.model_validate(questionnaire)
    assert questionnaire["url"] == instrument.QUESTIONNAIRE_URL
    assert questionnaire["version"] == instrument.INSTRUMENT_VERSION


def test_questionnaire_has_every_question_once_grouped_by_step(questionnaire):
    assert [group["linkId"] for group in questionnaire["item"]] == [
        f"step-{step.slug}" for step in instrument.STEPS
    ]
    items = items_by_link_id(questionnaire)
    for code, question in instrument.QUESTIONS.items():
        assert len(items[code]) == 1, code
        item = items[code][0]
        assert item["text"].startswith(question.label)
        assert item["required"] is bool(question.required)
        if question.choices:
            assert [option["valueCoding"]["code"] for option in item["answerOption"]] == [
                str(choice.key) for choice in question.choices
            ]


def test_every_branching_condition_becomes_enable_when(questionnaire):
    items = items_by_link_id(questionnaire)
    codes = set(instrument.QUESTIONS)
    for code, question in instrument.QUESTIONS.items():
        item = items[code][0]
        if question.shown_when is None:
            assert "enableWhen" not in item
            continue
        assert item.get("enableWhen") or item.get("extension"), code
        for condition in item.get("enableWhen", []):
            assert condition["question"] in codes
        if len(item.get("enableWhen", [])) > 1:
            assert item["enableBehavior"] in ("any", "all")
    pregnancy = items["step-pregnancy"][0]
    assert pregnancy["enableWhen"][0]["question"] == "sex_at_birth"
    assert pregnancy["enableWhen"][0]["operator"] == "!="


def test_threshold_branching_uses_the_values_in_force():
    values = {**DEFAULTS, "bp_caution_sbp": 150}
    items = items_by_link_id(fhir.questionnaire(values))
    conditions = items["vit_bp_repeat_sbp"][0]["enableWhen"]
    assert {"question": "vit_sbp", "operator": ">", "answerInteger": 150} in conditions
    assert items["vit_bp_repeat_sbp"][0]["enableBehavior"] == "any"


def test_scored_choice_comparison_lists_the_matching_choices(questionnaire):
    item = items_by_link_id(questionnaire)["audc_2"][0]
    assert [c["answerCoding"]["code"] for c in item["enableWhen"]] == ["1", "2", "3", "4"]
    assert item["enableBehavior"] == "any"


def test_condition_implied_by_an_enabled_question_is_dropped(questionnaire):
    item = items_by_link_id(questionnaire)["alc_last_drink"][0]
    assert [c["question"] for c in item["enableWhen"]] == ["alc_last_drink_unknown"]


def test_inexpressible_condition_is_documented_in_an_extension():
    item = {"linkId": "x", "text": "X"}
    condition = {"op": "not", "arg": {"op": "any", "args": []}}
    fhir._apply_condition(item, condition, {"questions": {}})
    assert item["extension"][0]["url"] == fhir.SHOWN_WHEN_EXTENSION
    assert "enableWhen" not in item


def test_response_validates_and_holds_exactly_the_answered_codes(staff_user):
    screening = build_screening(staff_user, realistic_answers())
    response = fhir.questionnaire_response(screening)
    QuestionnaireResponse.model_validate(response)
    assert answered_link_ids(response) == set(screening.answers)
    assert response["questionnaire"] == f"{instrument.QUESTIONNAIRE_URL}|1.0"
    assert response["status"] == "completed"
    assert response["subject"] == {"display": "Alex Rivera"}
    assert response["author"] == {"display": "staff"}
    assert dt.datetime.fromisoformat(response["authored"]) == screening.submitted_at


def test_response_answers_are_typed(staff_user):
    screening = build_screening(staff_user, realistic_answers(indication=["aud", "depression"]))
    items = items_by_link_id(fhir.questionnaire_response(screening))

    def answers(code):
        return items[code][0]["answer"]

    assert answers("vit_sbp") == [{"valueInteger": 192}]
    assert answers("vit_weight_kg") == [{"valueDecimal": 80.0}]
    assert answers("date_of_birth") == [{"valueDate": "1959-06-02"}]
    assert answers("med_none") == [{"valueBoolean": False}]
    assert answers("alg_other")[0]["valueString"].startswith("Penicillin")
    assert answers("cv_htn")[0]["valueCoding"]["code"] == "unsure"
    assert answers("phq9_1")[0]["valueCoding"] == {
        "system": fhir.choice_system("phq9_1"),
        "code": "2",
        "display": "More than half the days",
    }
    assert [a["valueCoding"]["code"] for a in answers("indication")] == ["aud", "depression"]
    meds = items["medications"]
    assert len(meds) == 3
    assert meds[0]["item"][0] == {
        "linkId": "medications.name",
        "text": "Medication name",
        "answer": [{"valueString": "Sertraline"}],
    }
    # Empty dose and frequency carry no answer (FHIR strings may not be empty).
    assert [sub["linkId"] for sub in meds[2]["item"]] == ["medications.name"]


def test_response_of_a_datetime_answer_keeps_its_offset(staff_user):
    last = dt.datetime(2026, 11, 21, 22, 30, tzinfo=dt.UTC)
    screening = build_screening(
        staff_user,
        realistic_answers(
            audc_1=2,
            audc_2=1,
            audc_3=1,
            alc_last_drink_unknown="no",
            alc_last_drink=last,
            alc_daily="no",
            alc_morning="no",
            aw_sx_now=["none"],
            aw_hx_seizure="no",
            aw_hx_dt="no",
            aw_prior_episodes=0,
        ),
    )
    response = fhir.questionnaire_response(screening)
    QuestionnaireResponse.model_validate(response)
    item = items_by_link_id(response)["alc_last_drink"][0]
    assert item["answer"] == [{"valueDateTime": "2026-11-21T22:30:00+00:00"}]


def test_response_is_amended_after_an_addendum(staff_user, clinician):
    screening = build_screening(staff_user)
    Addendum.objects.create(screening=screening, author=clinician, text="Corrected MRN.")
    response = fhir.questionnaire_response(screening)
    QuestionnaireResponse.model_validate(response)
    assert response["status"] == "amended"


def test_response_of_a_screening_submitted_through_the_service(staff_user):
    screening = make_screening(staff_user, realistic_answers())
    response = fhir.questionnaire_response(screening)
    QuestionnaireResponse.model_validate(response)
    assert answered_link_ids(response) == set(screening.answers)
