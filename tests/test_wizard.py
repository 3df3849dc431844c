"""The wizard driven through the test client: drafts, branching, navigation, submission."""

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.html import escape

from intake import instrument, thresholds
from intake.models import AuditEvent, Draft, Screening
from intake.wizard import HELD_ENTRIES, typed_display
from tests.factories import quiet_answers
from tests.wizard_helpers import (
    applicable_steps,
    complete,
    errors_of,
    hidden_value,
    post_data,
    start,
    step_url,
)

DEFAULTS = dict(thresholds.DEFAULTS)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def stored_field_names(draft):
    draft.refresh_from_db()
    names = set()
    for data in (draft.wizard_state.get("step_data") or {}).values():
        names |= set(data)
    return names


# ---------------------------------------------------------------------------
# Completion and submission


def test_full_completion_creates_one_screening_with_flags(staff_client, staff_user):
    draft = start(staff_client)
    answers = quiet_answers(cssrs_2="yes", cssrs_3="yes", cssrs_4="yes", cssrs_5="no")
    response = complete(staff_client, draft, answers)
    screening = Screening.objects.get()
    assert response["Location"] == screening.get_absolute_url()
    assert screening.submitted_by == staff_user
    assert instrument.decode_answers(screening.answers) == answers
    assert list(screening.flags.values_list("rule_id", flat=True))[:1] == ["SUI-01"]
    draft.refresh_from_db()
    assert draft.screening == screening


def test_steps_follow_the_spec_order_and_skip_pregnancy_for_male(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert response["Location"] == step_url(draft, "cardiovascular")
    response = staff_client.get(step_url(draft, "pregnancy"))
    assert response.status_code == 302


def test_progress_list_links_every_applicable_step_in_order(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.get(step_url(draft, "vitals"))
    sections = response.context["sections"]
    assert [s["slug"] for s in sections] == applicable_steps(answers)
    assert [s["url"] for s in sections] == [step_url(draft, s["slug"]) for s in sections]
    assert [s["slug"] for s in sections if s["current"]] == ["vitals"]
    assert [s["slug"] for s in sections if s["visited"]] == ["patient"]


def test_show_hide_script_gets_exactly_the_answers_conditions_read(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(sex_at_birth="female")
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    config = staff_client.get(step_url(draft, "pregnancy")).context["wizard_config"]
    named = set()
    for q in instrument.QUESTIONS.values():
        if q.shown_when is not None:
            named |= q.shown_when.codes()
    for step in instrument.STEPS:
        if step.applies_when is not None:
            named |= step.applies_when.codes()
    earlier = set(instrument.STEPS_BY_SLUG["patient"].codes) | set(
        instrument.STEPS_BY_SLUG["vitals"].codes
    )
    expected = {code for code in named & earlier if code in answers}
    assert set(config["answers"]) == expected
    assert config["answers"]["sex_at_birth"] == "female"
    assert all(isinstance(config["answers"][c], float) for c in expected if c.startswith("vit_"))


def test_show_hide_script_follows_a_new_threshold_version(staff_client):
    from intake.models import ThresholdSet

    draft = start(staff_client)
    url = step_url(draft, "vitals")

    def repeat_bp_limit():
        config = staff_client.get(url).context["wizard_config"]
        return config["visibility"]["questions"]["vit_bp_repeat_sbp"]["args"][0]["value"]

    assert repeat_bp_limit() == thresholds.DEFAULTS["bp_caution_sbp"]
    ThresholdSet.objects.create(version=1, values=dict(thresholds.DEFAULTS, bp_caution_sbp=150))
    assert repeat_bp_limit() == 150


def test_pregnancy_step_applies_for_female(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(sex_at_birth="female")
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert response["Location"] == step_url(draft, "pregnancy")


def test_new_screening_get_changes_nothing(staff_client):
    response = staff_client.get(reverse("intake:new_screening"))
    assert response.status_code == 200
    assert not Draft.objects.exists()


def test_double_submission_creates_one_screening(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    complete(staff_client, draft, answers)
    again = staff_client.post(step_url(draft, "review"), post_data("review", answers))
    assert again.status_code == 302
    screening = Screening.objects.get()
    assert again["Location"] == screening.get_absolute_url()
    page = staff_client.get(screening.get_absolute_url()).content.decode()
    # Said once, by the submission (``complete``), not again by the second post.
    assert page.count("Screening submitted. It is frozen now") == 1
    refreshed = staff_client.get(step_url(draft, "review"))
    assert refreshed["Location"] == screening.get_absolute_url()
    assert Screening.objects.count() == 1


def test_done_url_never_submits_on_get(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    for slug in applicable_steps(answers)[:-1]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    staff_client.get(step_url(draft, "done"))
    assert not Screening.objects.exists()


def test_incomplete_step_blocks_submission(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    for slug in applicable_steps(answers):
        if slug == "substances":
            continue
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    response = staff_client.post(step_url(draft, "review"), post_data("review", answers))
    assert response.status_code == 200
    assert "Other substances" in response.content.decode()
    assert not Screening.objects.exists()


def test_attestation_is_needed_to_submit(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(staff_attestation=None)
    for slug in applicable_steps(answers):
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    assert not Screening.objects.exists()


def test_changing_a_section_after_attesting_needs_a_fresh_attestation(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    for slug in applicable_steps(answers)[:-1]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    staff_client.post(step_url(draft, "review"), post_data("review", answers, wizard_save_exit="1"))
    draft.refresh_from_db()
    assert draft.answers["staff_attestation"] is True
    staff_client.post(step_url(draft, "logistics"), post_data("logistics", answers))
    draft.refresh_from_db()
    assert "staff_attestation" not in draft.answers


# ---------------------------------------------------------------------------
# Hidden questions never stored


def sample_value(q):
    """Return a plausible answer of question ``q``'s type."""
    if q.type in (instrument.YN, instrument.YNU):
        return "yes"
    if q.type == instrument.SINGLE:
        return q.choices[-1].key
    if q.type == instrument.SCALE:
        return 1
    if q.type == instrument.MULTI:
        return [next(c.key for c in q.choices if c.key not in instrument.EXCLUSIVE_KEYS)]
    if q.type == instrument.INT:
        return q.min_value
    if q.type == instrument.DECIMAL:
        return q.min_value
    if q.type == instrument.DATE:
        return dt.date(2020, 1, 1)
    if q.type == instrument.DATETIME:
        from django.utils import timezone

        return timezone.now() - dt.timedelta(days=2)
    if q.type == instrument.TEXT:
        return "hidden text"
    if q.type == instrument.MED_LIST:
        return [{"name": "Hidden med", "dose": "1 mg", "frequency": "daily"}]
    return True


CONDITIONAL = [q for q in instrument.QUESTIONS.values() if q.shown_when is not None]
PREGNANCY_CODES = instrument.STEPS_BY_SLUG["pregnancy"].codes


def base_hiding(code):
    """Return complete answers under which question ``code`` is hidden."""
    if code in ("psy_ad_trials", "psy_neuromod"):
        return quiet_answers(indication=["ptsd"], psy_ad_trials=None, psy_neuromod=None)
    return quiet_answers()


@pytest.mark.parametrize("q", CONDITIONAL, ids=[q.code for q in CONDITIONAL])
def test_answer_to_hidden_question_is_never_stored(staff_client, q):
    answers = base_hiding(q.code)
    assert not instrument.is_shown(q.code, answers, DEFAULTS)
    draft = start(staff_client)
    slug = instrument.step_of(q.code).slug
    with_hidden = {**answers, q.code: sample_value(q)}
    for step in applicable_steps(answers):
        data = post_data(step, with_hidden if step == slug else answers)
        if step == slug:
            # Posted as a browser without JavaScript would: the hidden field is filled in.
            assert any(key.startswith(f"{slug}-{q.code}") for key in data)
        response = staff_client.post(step_url(draft, step), data)
        assert response.status_code == 302
        draft.refresh_from_db()
        if draft.screening_id is None:
            assert q.code not in draft.answers
            stored = stored_field_names(draft)
            assert not any(name.startswith(f"{slug}-{q.code}") for name in stored)
    screening = Screening.objects.get()
    assert q.code not in screening.answers
    assert q.code not in str(screening.derived.get("evidence", ""))
    for flag in screening.flags.all():
        assert q.code not in str(flag.evidence)


def test_skipped_pregnancy_step_answers_are_never_stored(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.post(step_url(draft, "pregnancy"), {"pregnancy-preg_potential": "yes"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert not set(PREGNANCY_CODES) & set(draft.answers)
    assert not any(name.startswith("pregnancy-") for name in stored_field_names(draft))


def test_answers_become_hidden_when_an_earlier_answer_changes(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(
        sex_at_birth="female",
        indication=["bipolar_depression"],
        preg_potential="yes",
        preg_status="no",
        preg_planning="no",
        preg_contraception="yes",
        preg_breastfeeding="no",
        lab_preg_test="negative",
        psy_mood_stabilizer="yes",
        cv_mi="yes",
        cv_mi_date=dt.date(2021, 6, 1),
    )
    for slug in applicable_steps(answers)[:-1]:
        assert staff_client.post(step_url(draft, slug), post_data(slug, answers)).status_code == 302
    draft.refresh_from_db()
    assert {"preg_status", "psy_mood_stabilizer", "cv_mi_date"} <= set(draft.answers)

    changed = {**answers, "sex_at_birth": "male", "indication": ["depression"], "cv_mi": "no"}
    staff_client.post(step_url(draft, "patient"), post_data("patient", changed))
    staff_client.post(step_url(draft, "cardiovascular"), post_data("cardiovascular", changed))
    draft.refresh_from_db()
    for code in (*PREGNANCY_CODES, "psy_mood_stabilizer", "cv_mi_date"):
        assert code not in draft.answers
    names = stored_field_names(draft)
    assert not any(name.startswith("pregnancy-") for name in names)
    assert "psychiatric-psy_mood_stabilizer" not in names
    assert "cardiovascular-cv_mi_date" not in names


def test_saving_an_earlier_step_prunes_later_steps_only_when_answers_change(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(cv_mi="yes", cv_mi_date=dt.date(2021, 6, 1))
    for slug in ("patient", "vitals", "cardiovascular"):
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    assert "cardiovascular-cv_mi_date" in stored_field_names(draft)
    # The same vitals again: nothing changes, the later step keeps its typed date.
    staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert "cardiovascular-cv_mi_date" in stored_field_names(draft)
    # Later steps never hide earlier answers: saving cardiovascular keeps vitals.
    staff_client.post(step_url(draft, "cardiovascular"), post_data("cardiovascular", answers))
    assert "vitals-vit_sbp" in stored_field_names(draft)


def test_a_new_threshold_version_prunes_every_stored_step(staff_client):
    from intake.models import ThresholdSet

    draft = start(staff_client)
    answers = quiet_answers(vit_sbp=145, vit_dbp=85, vit_bp_repeat_sbp=142, vit_bp_repeat_dbp=84)
    for slug in ("patient", "vitals"):
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    assert "vitals-vit_bp_repeat_sbp" in stored_field_names(draft)
    draft.refresh_from_db()
    assert draft.answers["vit_bp_repeat_sbp"] == 142
    # The clinic raises the repeat-reading threshold above 145 mid-draft: the
    # next save (of a later step) drops the now-hidden repeat reading of vitals.
    ThresholdSet.objects.create(version=1, values=dict(thresholds.DEFAULTS, bp_caution_sbp=150))
    staff_client.post(step_url(draft, "cardiovascular"), post_data("cardiovascular", answers))
    assert "vitals-vit_bp_repeat_sbp" not in stored_field_names(draft)
    draft.refresh_from_db()
    assert "vit_bp_repeat_sbp" not in draft.answers


def test_newly_applicable_step_makes_review_list_it_incomplete(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    complete_until_review = applicable_steps(answers)[:-1]
    for slug in complete_until_review:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    staff_client.post(
        step_url(draft, "patient"),
        post_data("patient", {**answers, "sex_at_birth": "female"}, return_to="review"),
    )
    response = staff_client.get(step_url(draft, "review"))
    body = response.content.decode()
    assert "Incomplete sections" in body
    assert "Pregnancy and breastfeeding" in body


# ---------------------------------------------------------------------------
# Drafts: per screening, back, save and exit, resume


def test_drafts_are_kept_per_screening_not_in_the_session(staff_client):
    first = start(staff_client)
    second = start(staff_client)
    staff_client.post(
        step_url(first, "patient"), post_data("patient", quiet_answers(first_name="Ana"))
    )
    staff_client.post(
        step_url(second, "patient"), post_data("patient", quiet_answers(first_name="Ben"))
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.answers["first_name"] == "Ana"
    assert second.answers["first_name"] == "Ben"
    assert "Ana" in staff_client.get(step_url(first, "vitals")).content.decode()
    assert "Ben" not in staff_client.get(step_url(first, "vitals")).content.decode()
    assert not any(key.startswith("wizard_") for key in staff_client.session.keys())  # noqa: SIM118


def test_back_keeps_what_was_typed_even_if_invalid(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.post(
        step_url(draft, "vitals"),
        {
            "vitals-vit_sbp": "123",
            "vitals-vit_hr": "abc",
            "wizard_goto_step": "patient",
        },
    )
    assert response["Location"] == step_url(draft, "patient")
    page = staff_client.get(step_url(draft, "vitals")).content.decode()
    assert 'value="123"' in page
    assert 'value="abc"' in page
    draft.refresh_from_db()
    assert draft.answers["vit_sbp"] == 123
    assert "vit_hr" not in draft.answers


def test_save_and_exit_keeps_invalid_data_and_resumes_there(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.post(
        step_url(draft, "vitals"),
        {
            "vitals-vit_sbp": "999",
            "wizard_save_exit": "1",
            "autosave": "",
        },
    )
    assert response["Location"] == reverse("intake:home")
    draft.refresh_from_db()
    assert draft.last_step == "vitals"
    home = staff_client.get(reverse("intake:home")).content.decode()
    assert step_url(draft, "vitals") in home
    assert "Vital signs" in home
    assert 'value="999"' in staff_client.get(step_url(draft, "vitals")).content.decode()


def test_resume_shows_typed_values_without_errors_until_saved(staff_client):
    draft = start(staff_client)
    staff_client.post(
        step_url(draft, "patient"), {"patient-first_name": "Ana", "wizard_save_exit": "1"}
    )
    page = staff_client.get(step_url(draft, "patient")).content.decode()
    assert 'value="Ana"' in page
    assert "error-summary" not in page


def test_draft_entry_url_resumes_at_last_step(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    response = staff_client.get(reverse("intake:draft", kwargs={"draft_id": draft.pk}))
    assert response["Location"] == step_url(draft, "vitals")


def test_errors_show_a_summary_linking_to_fields(staff_client):
    draft = start(staff_client)
    response = staff_client.post(step_url(draft, "patient"), {"patient-first_name": "Ana"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="error-summary"' in body
    assert 'href="#id_patient-last_name"' in body
    assert 'href="#id_patient-sex_at_birth_0"' in body


def test_the_error_summary_lists_errors_in_the_order_of_the_form(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    data = post_data("vitals", answers)
    data["vitals-vit_hr"] = "72.5"  # a field's own error
    data["vitals-vit_dbp"] = str(answers["vit_sbp"] + 5)  # a step-wide check's error
    response = staff_client.post(step_url(draft, "vitals"), data)
    summary = response.content.decode().split('id="error-summary"')[1].split("</ul>")[0]
    links = re.findall(r'href="#id_vitals-(\w+)"', summary)
    assert set(links) == {"vit_dbp", "vit_hr"}, links
    fields = list(instrument.STEPS_BY_SLUG["vitals"].codes)
    assert links == sorted(links, key=fields.index)


def medication_errors_page(client, rows):
    """Return the medications step as shown after posting ``rows`` (its earlier steps saved)."""
    draft = start(client)
    answers = quiet_answers(med_none=False, medications=rows)
    for slug in applicable_steps(answers)[: applicable_steps(answers).index("medications")]:
        client.post(step_url(draft, slug), post_data(slug, answers))
    response = client.post(step_url(draft, "medications"), post_data("medications", answers))
    assert response.status_code == 200
    return response.content.decode()


def input_tag(page, element_id):
    return re.search(rf'<input [^>]*id="{element_id}"[^>]*>', page).group(0)


def test_a_medication_row_error_links_to_and_marks_its_own_row(staff_client):
    page = medication_errors_page(
        staff_client,
        [
            {"name": "Sertraline", "dose": "50 mg", "frequency": "daily"},
            {"name": "", "dose": "5 mg", "frequency": ""},
        ],
    )
    summary = page.split('id="error-summary"')[1].split("</ul>")[0]
    assert re.findall(r'href="#([^"]+)"', summary) == ["id_medications-medications-1-name"]
    assert "Row 2: enter the medicine" in summary
    name = input_tag(page, "id_medications-medications-1-name")
    assert 'aria-invalid="true"' in name and "is-invalid" in name
    error_id = re.search(r'aria-describedby="([^"]+)"', name).group(1)
    assert re.search(rf'id="{error_id}"><strong>Row 2: enter the medicine', page)
    for other in ("id_medications-medications-0-name", "id_medications-medications-1-dose"):
        assert "aria-invalid" not in input_tag(page, other)
    assert page.count('class="med-row-invalid"') == 1


def test_each_medication_row_error_links_to_the_input_it_is_about(staff_client):
    page = medication_errors_page(
        staff_client,
        [
            {"name": "", "dose": "5 mg", "frequency": ""},
            {"name": "Sertraline", "dose": "50 mg", "frequency": "daily"},
            {"name": "Aspirin", "dose": "", "frequency": "x" * (instrument.MED_FIELD_MAX + 1)},
        ],
    )
    summary = page.split('id="error-summary"')[1].split("</ul>")[0]
    assert re.findall(r'href="#([^"]+)"', summary) == [
        "id_medications-medications-0-name",
        "id_medications-medications-2-frequency",
    ]
    assert 'aria-invalid="true"' in input_tag(page, "id_medications-medications-2-frequency")
    assert "aria-invalid" not in input_tag(page, "id_medications-medications-2-name")
    assert page.count('class="med-row-invalid"') == 2


def test_summary_lines_lead_with_the_question_without_doubled_punctuation(staff_client):
    page = medication_errors_page(staff_client, [{"name": "", "dose": "5 mg", "frequency": ""}])
    summary = page.split('id="error-summary"')[1].split("</ul>")[0]
    medications = instrument.question("medications").label
    assert medications.endswith(".")
    assert f"{escape(medications[:-1])}: Row 1: enter the medicine" in summary
    data = post_data("medications", quiet_answers(med_none=False))
    data.pop("medications-med_reviewed_with_patient", None)
    draft = Draft.objects.latest("pk")
    page = staff_client.post(step_url(draft, "medications"), data).content.decode()
    summary = page.split('id="error-summary"')[1].split("</ul>")[0]
    reviewed = instrument.question("med_reviewed_with_patient").label
    assert reviewed.endswith("?")
    assert f"{escape(reviewed)} Choose an answer." in summary
    assert ".:" not in summary and "?:" not in summary


@pytest.mark.parametrize("index", ["9" * 5000, "\u00b2", "\u0661\u0662", "12345", "-1", ""])
def test_a_forged_medication_row_index_is_ignored_not_a_crash(staff_client, index):
    draft = start(staff_client)
    rows = [{"name": "Sertraline", "dose": "50 mg", "frequency": "daily"}]
    answers = quiet_answers(med_none=False, medications=rows)
    for slug in applicable_steps(answers)[: applicable_steps(answers).index("medications")]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    data = post_data("medications", answers)
    data[f"medications-medications-{index}-name"] = "Forgedrowname"
    # Form-encoded, as a browser sends it (the test client's multipart refuses the long name).
    response = staff_client.post(
        step_url(draft, "medications"),
        urlencode(data, doseq=True),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert instrument.decode_answers(draft.answers)["medications"] == [
        {"name": "Sertraline", "dose": "50 mg", "frequency": "daily"}
    ]
    page = staff_client.get(step_url(draft, "medications")).content.decode()
    assert "Sertraline" in page and "Forgedrowname" not in page


def test_an_empty_medication_list_error_links_to_the_first_name(staff_client):
    page = medication_errors_page(staff_client, [])
    summary = page.split('id="error-summary"')[1].split("</ul>")[0]
    assert re.findall(r'href="#([^"]+)"', summary) == ["id_medications-medications-0-name"]
    assert 'aria-invalid="true"' in input_tag(page, "id_medications-medications-0-name")


def test_implausible_vital_is_accepted_on_second_save_and_warned_at_review(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(vit_hr=72, vit_sbp=260, vit_bp_repeat_sbp=130, vit_bp_repeat_dbp=80)
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    first = staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert first.status_code == 200
    assert "usual range" in first.content.decode()
    second = staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert second.status_code == 302
    draft.refresh_from_db()
    assert draft.answers["vit_sbp"] == 260
    for slug in applicable_steps(answers)[2:-1]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    review = staff_client.get(step_url(draft, "review")).content.decode()
    assert "Values to double-check" in review


def test_an_implausible_systolic_and_the_repeat_reading_it_needs_are_reported_together(
    staff_client,
):
    draft = start(staff_client)
    answers = quiet_answers(vit_sbp=260)
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    first = staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert first.status_code == 200
    summary = first.content.decode().split('id="error-summary"')[1].split("</ul>")[0]
    assert re.findall(r'href="#([^"]+)"', summary) == [
        "id_vitals-vit_sbp",
        "id_vitals-vit_bp_repeat_sbp",
        "id_vitals-vit_bp_repeat_dbp",
    ]
    # The reading confirmed and the repeat typed: the next "Next" moves on.
    answers.update(vit_bp_repeat_sbp=172, vit_bp_repeat_dbp=88)
    second = staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    assert second.status_code == 302, errors_of(second)
    draft.refresh_from_db()
    assert (draft.answers["vit_sbp"], draft.answers["vit_bp_repeat_sbp"]) == (260, 172)


def test_a_repeat_reading_typed_beside_an_impossible_systolic_is_kept_in_the_draft(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    data = post_data(
        "vitals",
        answers,
        **{"vitals-vit_sbp": "350", "vitals-vit_bp_repeat_sbp": "162", "wizard_save_exit": "1"},
    )
    staff_client.post(step_url(draft, "vitals"), data)
    page = staff_client.get(step_url(draft, "vitals")).content.decode()
    assert 'name="vitals-vit_bp_repeat_sbp" value="162"' in page


def test_review_jump_returns_to_review(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    for slug in applicable_steps(answers)[:-1]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    review = staff_client.get(step_url(draft, "review")).content.decode()
    assert step_url(draft, "vitals") + "?return=review" in review
    page = staff_client.get(step_url(draft, "vitals") + "?return=review").content.decode()
    assert 'name="return_to" value="review"' in page
    response = staff_client.post(
        step_url(draft, "vitals"),
        post_data("vitals", {**answers, "vit_hr": 80}, return_to="review"),
    )
    assert response["Location"] == step_url(draft, "review")
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 80


def test_review_lists_answers_unsure_derived_meds_and_flags(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(
        cv_htn="unsure",
        med_none=False,
        medications=[
            {"name": "Sertraline", "dose": "50 mg", "frequency": "daily"},
            {"name": "Zzyzx tonic", "dose": "", "frequency": ""},
        ],
    )
    for slug in applicable_steps(answers)[:-1]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    body = staff_client.get(step_url(draft, "review")).content.decode()
    assert "Unsure" in body
    assert "is-unsure" in body
    assert "not recognized" in body
    assert "BMI" in body
    assert "Flags preview" in body
    assert "Flags are prompts for clinician review, not a treatment decision." in body


def test_without_javascript_save_and_add_more_rows_keeps_the_rows_and_adds_two(staff_client):
    draft = start(staff_client)
    meds = [{"name": f"Medicine {n}", "dose": f"{n} mg", "frequency": "daily"} for n in range(1, 4)]
    answers = quiet_answers(med_none=False, medications=meds)
    for slug in applicable_steps(answers)[: applicable_steps(answers).index("medications")]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    page = staff_client.get(step_url(draft, "medications")).content.decode()
    assert 'name="wizard_goto_step" value="medications"' in page  # the no-script button
    assert page.count("data-med-row") == 3
    response = staff_client.post(
        step_url(draft, "medications"),
        post_data("medications", answers, wizard_goto_step="medications"),
    )
    assert response["Location"] == step_url(draft, "medications")
    page = staff_client.get(response["Location"]).content.decode()
    assert page.count("data-med-row") == 5  # the three typed rows, then two blank ones
    for row in meds:
        assert f'value="{row["name"]}"' in page
    draft.refresh_from_db()
    assert [row["name"] for row in draft.answers["medications"]] == [m["name"] for m in meds]


def test_review_without_flags_says_a_clinician_still_reviews(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    for slug in applicable_steps(answers)[:-1]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    body = staff_client.get(step_url(draft, "review")).content.decode()
    assert (
        "No flags raised by the screening rules. A clinician still reviews every screening." in body
    )


# ---------------------------------------------------------------------------
# Urgent banner


def test_urgent_banner_appears_right_after_the_mood_step(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(cssrs_2="yes", cssrs_3="no", cssrs_4="yes", cssrs_5="no")
    steps = applicable_steps(answers)
    mood_index = steps.index("mood")
    for slug in steps[:mood_index]:
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    before = staff_client.get(step_url(draft, "mood")).content.decode()
    assert "urgent-banner" not in before
    response = staff_client.post(step_url(draft, "mood"), post_data("mood", answers))
    assert response["Location"] == step_url(draft, "alcohol")
    for slug in steps[mood_index + 1 :]:
        page = staff_client.get(step_url(draft, slug)).content.decode()
        assert 'role="alert"' in page and "urgent-banner" in page
        assert escape(settings.SUICIDE_SAFETY_PROTOCOL) in page
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    screening = Screening.objects.get()
    page = staff_client.get(screening.get_absolute_url()).content.decode()
    assert "urgent-banner" in page and escape(settings.SUICIDE_SAFETY_PROTOCOL) in page


def step_after_an_urgent_mood_step(client):
    """Save every step up to mood with an imminent-risk answer; return the next step's page."""
    draft = start(client)
    answers = quiet_answers(cssrs_2="yes", cssrs_3="no", cssrs_4="yes", cssrs_5="no")
    steps = applicable_steps(answers)
    for slug in steps[: steps.index("mood") + 1]:
        client.post(step_url(draft, slug), post_data(slug, answers))
    return client.get(step_url(draft, "alcohol")).content.decode()


def test_the_urgent_banner_follows_the_step_title_and_the_skip_link_target(staff_client):
    """Skipping to the step lands before the banner; the headings run H1, then its H2."""
    page = step_after_an_urgent_mood_step(staff_client)
    banner = page.index("urgent-banner")
    assert page.index('id="step-content"') < page.index("<h1") < banner
    assert page.index("<h2") > banner
    assert banner < page.index("data-wizard")


def test_without_a_configured_protocol_the_banner_says_it_is_not_entered(staff_client, settings):
    settings.SUICIDE_SAFETY_PROTOCOL = ""
    page = step_after_an_urgent_mood_step(staff_client)
    banner = page.split('role="alert"')[1].split("</div>")[0]
    assert (
        "<strong>Clinic protocol:</strong> Not entered in this app. Follow the clinic&#x27;s own "
        "suicide-safety protocol, and ask whoever runs the app&#x27;s server to have it shown "
        "here." in banner
    )


# ---------------------------------------------------------------------------
# Idle-timeout autosave contract


def test_autosave_saves_logs_out_and_returns_to_the_same_step(client, staff_user):
    client.force_login(staff_user)
    draft = start(client)
    page = client.get(step_url(draft, "patient")).content.decode()
    assert "data-autosave" in page and 'name="autosave"' in page
    response = client.post(
        step_url(draft, "patient"),
        {
            "patient-first_name": "Ana",
            "wizard_save_exit": "1",
            "autosave": "1",
        },
    )
    location = urlparse(response["Location"])
    assert location.path == reverse("login")
    assert parse_qs(location.query)["next"] == [step_url(draft, "patient")]
    assert "_auth_user_id" not in client.session
    draft.refresh_from_db()
    assert draft.wizard_state["step_data"]["patient"]["patient-first_name"] == ["Ana"]
    client.force_login(staff_user)
    assert 'value="Ana"' in client.get(step_url(draft, "patient")).content.decode()


def test_the_timeout_sign_in_page_says_why_and_that_the_draft_was_kept(client, staff_user):
    client.force_login(staff_user)
    draft = start(client)
    data = {"patient-first_name": "Ana", "wizard_save_exit": "1", "autosave": "1"}
    response = client.post(step_url(draft, "patient"), data, follow=True)
    html = response.content.decode()
    assert "You were signed out after 15 minutes without activity." in html
    assert "Your draft was saved; sign in to continue where you left off." in html


def test_a_background_save_keeps_what_was_typed_and_stays_signed_in(client, staff_user):
    client.force_login(staff_user)
    draft = start(client)
    response = client.post(
        step_url(draft, "patient"),
        {
            "patient-first_name": "Ana",
            "patient-mrn": "MRN-77",
            "wizard_save_exit": "1",
            "autosave": "background",
        },
    )
    assert response.status_code == 204 and response.content == b""
    assert "_auth_user_id" in client.session
    draft.refresh_from_db()
    assert draft.wizard_state["step_data"]["patient"]["patient-mrn"] == ["MRN-77"]
    assert draft.last_step == "patient"
    event = AuditEvent.objects.filter(action="intake.draft.saved").get()
    assert event.detail == {"step": "patient"}
    assert "Draft saved" not in client.get(reverse("intake:home")).content.decode()
    # Arriving after the next page loaded (a section link was followed), a
    # background save of the page left behind does not move where the draft resumes.
    client.post(step_url(draft, "patient"), post_data("patient", quiet_answers()))
    draft.refresh_from_db()
    assert draft.last_step == "vitals"
    response = client.post(
        step_url(draft, "patient"),
        {
            **post_data("patient", quiet_answers(mrn="MRN-78")),
            "wizard_save_exit": "1",
            "autosave": "background",
        },
    )
    assert response.status_code == 204
    draft.refresh_from_db()
    assert draft.last_step == "vitals"
    assert draft.answers["mrn"] == "MRN-78"


def test_draft_saves_are_audited_with_step_slug_only(staff_client):
    draft = start(staff_client)
    staff_client.post(step_url(draft, "patient"), post_data("patient", quiet_answers()))
    event = AuditEvent.objects.filter(action="intake.draft.saved").get()
    assert event.detail == {"step": "patient"}
    assert event.object_id == str(draft.pk)


def test_decimal_answers_round_trip_through_the_draft(staff_client):
    draft = start(staff_client)
    answers = quiet_answers(vit_bac=Decimal("0.010"))
    staff_client.post(step_url(draft, "patient"), post_data("patient", answers))
    staff_client.post(step_url(draft, "vitals"), post_data("vitals", answers))
    draft.refresh_from_db()
    assert draft.answers["vit_bac"] == "0.010"
    assert draft.answers["vit_weight_kg"] == "80.0"


# ---------------------------------------------------------------------------
# Two tabs on one draft, signing out, submitted drafts, threshold changes


def vitals_saved_at_72(client):
    """Save patient and vitals (heart rate 72); return the draft and a vitals page opened then."""
    draft = start(client)
    answers = quiet_answers(vit_hr=72)
    for slug in ("patient", "vitals"):
        client.post(step_url(draft, slug), post_data(slug, answers))
    return draft, client.get(step_url(draft, "vitals"))


def two_tabs_on_vitals(client, hr_there=135):
    """Open vitals in tab A, save ``hr_there`` from tab B; return (draft, tab A's page)."""
    draft, tab_a = vitals_saved_at_72(client)
    tab_b = client.get(step_url(draft, "vitals"))
    client.post(
        step_url(draft, "vitals"),
        post_data(
            "vitals",
            quiet_answers(vit_hr=hr_there),
            step_digest=hidden_value(tab_b, "step_digest"),
        ),
    )
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == hr_there
    return draft, tab_a


STALE_ACTIONS = {
    "next": {},
    "back": {"wizard_goto_step": "patient"},
    "section link": {"wizard_goto_step": "cardiovascular"},
    "save and exit": {"wizard_save_exit": "1"},
}


def post_stale(client, draft, page, hr=72, follow=False, **extra):
    """Post vitals from ``page`` (digest, token and conflict mark as it carries them)."""
    hidden = {
        name: value
        for name in ("step_digest", "page_token", "conflict_shown")
        if (value := hidden_value(page, name)) is not None
    }
    return client.post(
        step_url(draft, "vitals"),
        post_data("vitals", quiet_answers(vit_hr=hr), **hidden, **extra),
        follow=follow,
    )


@pytest.mark.parametrize("action", STALE_ACTIONS)
def test_a_stale_tab_does_not_undo_answers_saved_in_another_tab(staff_client, action):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    before = draft.wizard_state
    response = post_stale(staff_client, draft, tab_a, **STALE_ACTIONS[action])
    assert response.status_code == 200
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135
    assert draft.wizard_state == before
    html = response.content.decode()
    assert "This step was changed in another tab or window after you opened it." in html
    assert "Heart rate, beats per minute (clinician) (saved now: 135)" in html
    assert "Systolic" not in html.split('id="changed-elsewhere"')[1].split("</div>")[0]
    # What this tab typed is shown again, not lost; no error shouts at a Back.
    assert response.context["form"]["vit_hr"].value() == "72"
    assert "_auth_user_id" in staff_client.session
    # The page carries the new digest and is marked as shown after a conflict.
    assert hidden_value(response, "step_digest") != hidden_value(tab_a, "step_digest")
    assert hidden_value(response, "conflict_shown") == "1"


def test_next_on_the_page_shown_again_keeps_what_it_shows(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    shown_again = post_stale(staff_client, draft, tab_a, wizard_goto_step="patient")
    response = post_stale(staff_client, draft, shown_again)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 72


@pytest.mark.parametrize("action", ["back", "section link", "save and exit"])
def test_leaving_the_page_shown_again_otherwise_keeps_the_other_tabs_answers(staff_client, action):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    shown_again = post_stale(staff_client, draft, tab_a)
    response = post_stale(staff_client, draft, shown_again, follow=True, **STALE_ACTIONS[action])
    assert response.redirect_chain  # went where asked
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135
    assert "Your entries on “Vital signs” were not saved" in response.content.decode()


@pytest.mark.parametrize("autosave, status", [("background", 409), ("1", 302)])
def test_saves_nobody_watches_never_keep_the_page_shown_again(staff_client, autosave, status):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    shown_again = post_stale(staff_client, draft, tab_a)
    response = post_stale(staff_client, draft, shown_again, wizard_save_exit="1", autosave=autosave)
    assert response.status_code == status
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135


def test_sign_out_on_a_stale_page_signs_out_and_says_its_entries_were_not_saved(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    response = post_stale(staff_client, draft, tab_a, wizard_sign_out="1", follow=True)
    assert "_auth_user_id" not in staff_client.session
    html = response.content.decode()
    assert "Signed out. The entries on the last page were not saved" in html
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135


def test_sign_out_on_a_page_shown_again_also_signs_out_without_saving(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    shown_again = post_stale(staff_client, draft, tab_a)
    post_stale(staff_client, draft, shown_again, wizard_sign_out="1")
    assert "_auth_user_id" not in staff_client.session
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135


def test_a_pages_own_background_save_never_reads_as_another_tabs_change(staff_client):
    draft, page = vitals_saved_at_72(staff_client)
    # Its background save lands (heart rate 80), but its reply is slow: the page
    # still carries the digest it was drawn with when "Next" is pressed.
    assert (
        post_stale(staff_client, draft, page, hr=80, wizard_save_exit="1", autosave="background")
    ).status_code == 204
    response = post_stale(staff_client, draft, page, hr=88)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 88


def test_another_pages_save_in_between_is_still_a_conflict(staff_client):
    draft, page = vitals_saved_at_72(staff_client)
    other = staff_client.get(step_url(draft, "vitals"))
    post_stale(staff_client, draft, page, hr=80, wizard_save_exit="1", autosave="background")
    post_stale(staff_client, draft, staff_client.get(step_url(draft, "vitals")), hr=135)
    assert post_stale(staff_client, draft, page, hr=88).status_code == 200
    assert post_stale(staff_client, draft, other, hr=90).status_code == 200
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135


def test_a_stale_page_posting_what_is_stored_saves_without_a_warning(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    response = staff_client.post(
        step_url(draft, "vitals"),
        post_data(
            "vitals",
            quiet_answers(vit_hr=135),
            step_digest=hidden_value(tab_a, "step_digest"),
            wizard_goto_step="patient",
        ),
    )
    assert response["Location"] == step_url(draft, "patient")


def test_a_stale_background_save_is_refused_and_stores_no_answer(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    before = draft.wizard_state
    response = staff_client.post(
        step_url(draft, "vitals"),
        post_data(
            "vitals",
            quiet_answers(vit_hr=72),
            step_digest=hidden_value(tab_a, "step_digest"),
            wizard_save_exit="1",
            autosave="background",
        ),
    )
    assert response.status_code == 409
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135
    # Only the held entries (shown on the step, never answers) were added.
    held = draft.wizard_state["extra_data"].pop(HELD_ENTRIES)
    assert draft.wizard_state == before
    assert list(held) == ["vitals"]


# Entries of an overtaken page that left (hidden or closed tab, idle timeout, sign-out)
# are held on the draft and shown on their step, never taken as answers.
HR_LABEL = "Heart rate, beats per minute (clinician)"
LEAVING = {
    "closed tab": {"wizard_save_exit": "1", "autosave": "background"},
    "idle timeout": {"wizard_save_exit": "1", "autosave": "1"},
    "sign out": {"wizard_sign_out": "1"},
}


def held_notice(response):
    """Return the text of the step's held-entries notice, or None."""
    html = response.content.decode()
    if 'id="held-entries"' not in html:
        return None
    return re.sub(r"\s+", " ", html.split('id="held-entries"', 1)[1].split("</div>", 1)[0])


@pytest.mark.parametrize("leaving", LEAVING)
def test_entries_of_an_overtaken_page_that_left_are_shown_on_the_step(staff_client, leaving):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    post_stale(staff_client, draft, tab_a, hr=72, **LEAVING[leaving])
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135  # the other tab's answer stands
    staff_client.force_login(draft.created_by)  # back after signing in, if signed out
    page = staff_client.get(step_url(draft, "vitals"))
    notice = held_notice(page)
    assert notice is not None
    assert "Entries from another tab or window were not saved" in notice
    assert f"{HR_LABEL}: <strong>72</strong>" in notice
    # Only what differed from the saved step is held.
    assert "Systolic" not in notice
    assert page.context["form"]["vit_hr"].value() == "135"
    event = AuditEvent.objects.filter(action="intake.draft.saved").latest("pk")
    assert event.detail == {"step": "vitals", "entries_held": True}


def test_held_entries_read_as_staff_typed_them(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    # A value the form refuses is held as typed.
    staff_client.post(
        step_url(draft, "vitals"),
        post_data(
            "vitals",
            quiet_answers(vit_hr=135),
            step_digest=hidden_value(tab_a, "step_digest"),
            **{"vitals-vit_hr": "9O"},
            **LEAVING["closed tab"],
        ),
    )
    notice = held_notice(staff_client.get(step_url(draft, "vitals")))
    assert f"{HR_LABEL}: <strong>9O</strong>" in notice


def test_held_entries_show_choice_labels_and_medication_rows():
    q = instrument.question("cv_htn")
    assert typed_display(q, ["unsure"]) == "Unsure"
    assert typed_display(q, []) == "no answer"
    meds = instrument.question("medications")
    typed = [
        ("medications-medications-0-dose", ["50 mg"]),
        ("medications-medications-0-name", ["Sertraline"]),
        ("medications-medications-1-name", ["Lithium"]),
    ]
    assert typed_display(meds, typed) == "Sertraline 50 mg; Lithium"
    many = [(f"medications-medications-{row}-name", [f"M{row}"]) for row in (10, 2, 9)]
    assert typed_display(meds, many) == "M2; M9; M10"


def test_held_entries_stay_until_the_step_is_saved_from_its_page(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    post_stale(staff_client, draft, tab_a, hr=72, **LEAVING["closed tab"])
    page = staff_client.get(step_url(draft, "vitals"))
    # A background save of the page showing them is not someone reading them.
    assert post_stale(staff_client, draft, page, hr=135, **LEAVING["closed tab"]).status_code == 204
    page = staff_client.get(step_url(draft, "vitals"))
    assert held_notice(page) is not None
    # "Next" from it is.
    assert post_stale(staff_client, draft, page, hr=72).status_code == 302
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 72
    assert HELD_ENTRIES in draft.wizard_state["extra_data"]
    assert draft.wizard_state["extra_data"][HELD_ENTRIES] == {}
    assert held_notice(staff_client.get(step_url(draft, "vitals"))) is None


def test_a_page_shown_again_with_both_versions_does_not_repeat_the_held_entries(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    post_stale(staff_client, draft, tab_a, hr=72, **LEAVING["closed tab"])
    # The same (still open) tab's "Next": both versions are on the page already.
    shown_again = post_stale(staff_client, draft, tab_a, hr=72)
    assert shown_again.status_code == 200
    assert 'id="changed-elsewhere"' in shown_again.content.decode()
    assert held_notice(shown_again) is None


def test_the_review_page_names_the_steps_with_held_entries(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    post_stale(staff_client, draft, tab_a, hr=72, **LEAVING["closed tab"])
    html = staff_client.get(step_url(draft, "review")).content.decode()
    section = html.split('id="held-title"', 1)[1].split("</section>", 1)[0]
    assert f'href="{step_url(draft, "vitals")}?return=review"' in section
    assert "Vital signs" in section


def test_nothing_is_held_when_the_stale_page_had_nothing_of_its_own(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    # It posts what is stored now: no conflict, a normal background save.
    response = post_stale(staff_client, draft, tab_a, hr=135, **LEAVING["closed tab"])
    assert response.status_code == 204
    draft.refresh_from_db()
    assert HELD_ENTRIES not in draft.wizard_state["extra_data"]


def test_a_stale_timeout_save_signs_out_and_says_the_entries_were_not_saved(staff_client):
    draft, tab_a = two_tabs_on_vitals(staff_client)
    response = staff_client.post(
        step_url(draft, "vitals"),
        post_data(
            "vitals",
            quiet_answers(vit_hr=72),
            step_digest=hidden_value(tab_a, "step_digest"),
            wizard_save_exit="1",
            autosave="1",
        ),
        follow=True,
    )
    assert "_auth_user_id" not in staff_client.session
    html = response.content.decode()
    assert "You were signed out after 15 minutes without activity." in html
    assert "Your draft was saved" not in html
    assert "were not saved" in html
    draft.refresh_from_db()
    assert draft.answers["vit_hr"] == 135


def test_a_background_save_answers_with_the_digest_of_what_it_stored(staff_client):
    draft = start(staff_client)
    page = staff_client.get(step_url(draft, "patient"))
    response = staff_client.post(
        step_url(draft, "patient"),
        {
            "patient-first_name": "Ana",
            "step_digest": hidden_value(page, "step_digest"),
            "wizard_save_exit": "1",
            "autosave": "background",
        },
    )
    assert response.status_code == 204
    assert response["X-Step-Digest"] == hidden_value(
        staff_client.get(step_url(draft, "patient")), "step_digest"
    )
    # The same tab, its digest updated as idle.js does, saves more without a warning.
    more = staff_client.post(
        step_url(draft, "patient"),
        {
            "patient-first_name": "Ana",
            "patient-last_name": "Diaz",
            "step_digest": response["X-Step-Digest"],
            "wizard_save_exit": "1",
        },
    )
    assert more.status_code == 302
    draft.refresh_from_db()
    assert draft.wizard_state["step_data"]["patient"]["patient-last_name"] == ["Diaz"]


@pytest.mark.parametrize("digest", [None, "", "x" * 5000, "../\x00", "0" * 16])
def test_a_missing_digest_skips_the_check_and_a_malformed_one_counts_as_stale(staff_client, digest):
    draft, _tab_a = two_tabs_on_vitals(staff_client)
    extra = {} if digest is None else {"step_digest": digest}
    response = staff_client.post(
        step_url(draft, "vitals"),
        post_data("vitals", quiet_answers(vit_hr=72), wizard_goto_step="patient", **extra),
    )
    draft.refresh_from_db()
    if digest is None:
        assert response.status_code == 302 and draft.answers["vit_hr"] == 72
    else:
        assert response.status_code == 200 and draft.answers["vit_hr"] == 135


def at_review(client, answers):
    """Save every step before review with ``answers``; return the draft and its review page."""
    draft = start(client)
    for slug in applicable_steps(answers)[:-1]:
        client.post(step_url(draft, slug), post_data(slug, answers))
    return draft, client.get(step_url(draft, "review"))


def post_review(client, draft, answers, page, **extra):
    """Post the review step with what ``page`` carried (its digests and thresholds version)."""
    shown = {
        name: hidden_value(page, name)
        for name in ("step_digest", "answers_digest", "thresholds_version")
    }
    return client.post(
        step_url(draft, "review"), post_data("review", answers, **{**shown, **extra})
    )


def refused_review(response, message):
    """Assert ``response`` shows the review page again with ``message``, nothing submitted."""
    assert response.status_code == 200
    assert not Screening.objects.exists()
    html = response.content.decode()
    assert message in html
    return html


def test_a_stale_review_page_is_not_submitted(staff_client):
    answers = quiet_answers(vit_hr=111)
    draft, tab_a = at_review(staff_client, answers)
    assert "HR-02" in tab_a.content.decode()
    vitals = staff_client.get(step_url(draft, "vitals"))
    staff_client.post(
        step_url(draft, "vitals"),
        post_data(
            "vitals",
            quiet_answers(vit_hr=135),
            step_digest=hidden_value(vitals, "step_digest"),
            return_to="review",
        ),
    )
    response = post_review(staff_client, draft, answers, tab_a)
    html = refused_review(
        response,
        "The answers changed in another tab or window since this page was shown. "
        "Check them and submit again.",
    )
    assert "HR-01" in html and "135" in html
    # Submitting the page that shows the current answers goes through.
    again = post_review(staff_client, draft, answers, response)
    screening = Screening.objects.get()
    assert again["Location"] == screening.get_absolute_url()
    assert screening.answers["vit_hr"] == 135


def test_a_review_page_shown_under_earlier_thresholds_is_not_submitted(staff_client):
    from intake.models import ThresholdSet

    answers = quiet_answers(vit_hr=111)
    draft, shown = at_review(staff_client, answers)
    assert "HR-02" in shown.content.decode()
    assert hidden_value(shown, "thresholds_version") == "0"
    ThresholdSet.objects.create(version=1, values=dict(thresholds.DEFAULTS, hr_caution=115))

    response = post_review(staff_client, draft, answers, shown)
    html = refused_review(
        response,
        "The clinic&#x27;s thresholds changed since this page was shown (now version 1), so "
        "the flags may differ. Check them and submit again.",
    )
    assert "HR-02" not in html and "Flag thresholds: the clinic's version 1." in html
    assert hidden_value(response, "thresholds_version") == "1"
    # The answers it confirmed are the ones shown: the confirmation stays ticked.
    assert re.search(r'<input type="checkbox" name="review-staff_attestation"[^>]* checked', html)
    # Leaving the page is not held up: only submitting depends on its flags.
    back = post_review(staff_client, draft, answers, shown, wizard_goto_step="logistics")
    assert back.status_code == 302 and back["Location"].endswith("/logistics/")
    # The page that shows the flags in force is submitted, with that version.
    again = post_review(staff_client, draft, answers, response)
    screening = Screening.objects.get()
    assert again["Location"] == screening.get_absolute_url()
    assert screening.thresholds_version == 1
    assert "HR-02" not in {flag.rule_id for flag in screening.flags.all()}


def test_signing_out_from_a_step_saves_what_was_typed(staff_client):
    draft = start(staff_client)
    page = staff_client.get(step_url(draft, "patient"))
    response = staff_client.post(
        step_url(draft, "patient"),
        {
            "patient-first_name": "Ana",
            "step_digest": hidden_value(page, "step_digest"),
            "autosave": "",
            "wizard_sign_out": "1",
        },
        follow=True,
    )
    assert "_auth_user_id" not in staff_client.session
    assert response.redirect_chain[0][0].startswith(reverse("login"))
    html = response.content.decode()
    assert "Signed out. Your draft was saved; sign in to continue where you left off." in html
    draft.refresh_from_db()
    assert draft.wizard_state["step_data"]["patient"]["patient-first_name"] == ["Ana"]
    assert draft.last_step == "patient"
    assert AuditEvent.objects.filter(action="intake.auth.logout").exists()


def test_signing_out_from_a_submitted_draft_signs_out(staff_client):
    draft = start(staff_client)
    complete(staff_client, draft, quiet_answers())
    response = staff_client.post(step_url(draft, "review"), {"wizard_sign_out": "1"}, follow=True)
    assert "_auth_user_id" not in staff_client.session
    assert "Signed out." in response.content.decode()


def test_a_post_to_a_submitted_draft_says_nothing_was_changed(staff_client):
    draft = start(staff_client)
    answers = quiet_answers()
    complete(staff_client, draft, answers)
    screening = Screening.objects.get()
    response = staff_client.post(
        step_url(draft, "vitals"), post_data("vitals", quiet_answers(vit_hr=99)), follow=True
    )
    assert response.redirect_chain[-1][0] == screening.get_absolute_url()
    html = response.content.decode()
    assert "Nothing was changed: this screening was already submitted and is frozen." in html
    assert "Corrections are added as addenda by a clinician." in html
    screening.refresh_from_db()
    assert screening.answers["vit_hr"] == answers["vit_hr"]
    assert "Flag thresholds: the app's defaults (version 0" in html


def test_a_background_save_to_a_submitted_draft_leaves_no_message(staff_client):
    draft = start(staff_client)
    complete(staff_client, draft, quiet_answers())
    staff_client.post(
        step_url(draft, "vitals"),
        {"vitals-vit_hr": "99", "wizard_save_exit": "1", "autosave": "background"},
    )
    assert "Nothing was changed" not in staff_client.get(reverse("intake:home")).content.decode()


def test_a_new_threshold_version_names_the_answers_it_removed(staff_client):
    from intake.models import ThresholdSet

    draft = start(staff_client)
    answers = quiet_answers(vit_sbp=145, vit_dbp=85, vit_bp_repeat_sbp=142, vit_bp_repeat_dbp=84)
    for slug in ("patient", "vitals"):
        staff_client.post(step_url(draft, slug), post_data(slug, answers))
    quiet = staff_client.post(
        step_url(draft, "cardiovascular"), post_data("cardiovascular", answers), follow=True
    )
    assert "thresholds changed" not in quiet.content.decode()
    ThresholdSet.objects.create(version=1, values=dict(thresholds.DEFAULTS, bp_caution_sbp=150))
    response = staff_client.post(
        step_url(draft, "cardiovascular"), post_data("cardiovascular", answers), follow=True
    )
    html = response.content.decode()
    repeat_sbp = instrument.question("vit_bp_repeat_sbp").label
    repeat_dbp = instrument.question("vit_bp_repeat_dbp").label
    assert "The clinic&#x27;s thresholds changed" in html
    assert escape(repeat_sbp) in html and escape(repeat_dbp) in html
    assert "142" not in html
    # Only once: the next save under the same version removes nothing more.
    again = staff_client.post(
        step_url(draft, "cardiovascular"), post_data("cardiovascular", answers), follow=True
    )
    assert "thresholds changed" not in again.content.decode()


def test_the_review_step_shows_the_thresholds_version(staff_client):
    from intake.models import ThresholdSet

    draft = start(staff_client)
    ThresholdSet.objects.create(version=3, values=dict(thresholds.DEFAULTS))
    html = staff_client.get(step_url(draft, "review")).content.decode()
    assert "Flag thresholds: the clinic's version 3." in html


def test_a_medication_list_changed_in_another_tab_shows_what_was_saved_there(staff_client):
    def meds(dose):
        return quiet_answers(
            med_none=False,
            medications=[
                {"name": "Lorazepam", "dose": dose, "frequency": "at night"},
                {"name": "Sertraline", "dose": "50 mg", "frequency": "daily"},
            ],
        )

    draft = start(staff_client)
    for slug in applicable_steps(meds("1 mg")):
        if slug == "medications":
            break
        staff_client.post(step_url(draft, slug), post_data(slug, meds("1 mg")))
    staff_client.post(step_url(draft, "medications"), post_data("medications", meds("1 mg")))
    tab_a = staff_client.get(step_url(draft, "medications"))
    tab_b = staff_client.get(step_url(draft, "medications"))
    staff_client.post(
        step_url(draft, "medications"),
        post_data("medications", meds("2 mg"), step_digest=hidden_value(tab_b, "step_digest")),
    )
    response = staff_client.post(
        step_url(draft, "medications"),
        post_data("medications", meds("1 mg"), step_digest=hidden_value(tab_a, "step_digest")),
    )
    assert response.status_code == 200
    notice = response.content.decode().split('id="changed-elsewhere"')[1].split("</div>")[0]
    assert "(saved now: Lorazepam 2 mg at night; Sertraline 50 mg daily)" in notice
