"""Submission under concurrency and faults: one screening per draft, nothing half-written.

These tests commit for real (``transactional_db``): each thread has its own
database connection, and a fault must roll back a real transaction.
"""

import threading

import pytest
from django.db import close_old_connections, connection
from django.urls import reverse
from django.utils import timezone

from intake import audit, instrument, rules, services
from intake.models import AuditEvent, Draft, Flag, Screening
from tests.factories import make_draft, quiet_answers
from tests.wizard_helpers import applicable_steps, post_data, step_url

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

DRAFTS = 20
SUBMITTED = "intake.screening.submitted"


def flagged_answers():
    """Return complete answers that raise several flags (suicidal ideation with a plan)."""
    return quiet_answers(
        cssrs_2="yes",
        cssrs_3="yes",
        cssrs_4="yes",
        cssrs_5="no",
        vit_sbp=150,
        vit_dbp=95,
        vit_bp_repeat_sbp=150,
        vit_bp_repeat_dbp=95,
    )


def run_threads(targets, *, timeout=60):
    """Start one thread per callable at the same moment; return {index: result or exception}."""
    barrier = threading.Barrier(len(targets))
    outcomes = {}

    def run(index, target):
        try:
            barrier.wait(timeout=timeout)
            outcomes[index] = target()
        except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
            outcomes[index] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, target)) for index, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a submission hung"
    return outcomes


def test_twenty_drafts_submitted_concurrently_twice_each_make_one_screening_each(make_user):
    users = [make_user(f"staff{index}", "intake_staff") for index in range(4)]
    drafts = [make_draft(users[index % len(users)], flagged_answers()) for index in range(DRAFTS)]
    expected_flags = len(rules.evaluate(flagged_answers(), now=timezone.localtime()))

    def submit(draft):
        return lambda: services.submit_screening(draft_id=draft.pk, user=draft.created_by).pk

    targets = [submit(draft) for draft in drafts for _attempt in range(2)]
    outcomes = run_threads(targets)

    errors = {index: result for index, result in outcomes.items() if isinstance(result, Exception)}
    assert errors == {}
    assert len(outcomes) == 2 * DRAFTS
    for position, draft in enumerate(drafts):
        first, second = outcomes[2 * position], outcomes[2 * position + 1]
        assert first == second
        draft.refresh_from_db()
        assert draft.screening_id == first
        assert draft.answers == {}
    assert Screening.objects.count() == DRAFTS
    assert set(Screening.objects.values_list("pk", flat=True)) == set(outcomes.values())
    assert AuditEvent.objects.filter(action=SUBMITTED).count() == DRAFTS
    assert expected_flags > 0
    assert Flag.objects.count() == DRAFTS * expected_flags
    for screening in Screening.objects.all():
        assert screening.snapshot_sha256 == services.snapshot_sha256(
            services.snapshot_document(screening)
        )


# ---------------------------------------------------------------------------
# Faults in the middle of a submission


class Boom(RuntimeError):
    """An injected fault."""


def _raise(*args, **kwargs):
    raise Boom("injected fault")


FAULTS = {
    "evaluate": (rules, "evaluate"),
    "flag_insert": (Flag.objects, "bulk_create"),
    "snapshot_digest": (services, "snapshot_sha256"),
    "audit_row": (audit, "record"),
}


def assert_nothing_written(draft, answers_before):
    draft.refresh_from_db()
    assert draft.screening_id is None
    assert draft.answers == answers_before
    assert Screening.objects.count() == 0
    assert Flag.objects.count() == 0
    assert not AuditEvent.objects.filter(action=SUBMITTED).exists()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_mid_submission_leaves_the_draft_intact_and_a_retry_succeeds(
    staff_user, monkeypatch, fault
):
    draft = make_draft(staff_user, flagged_answers())
    before = dict(draft.answers)
    with monkeypatch.context() as patch:
        patch.setattr(*FAULTS[fault], _raise)
        with pytest.raises(Boom):
            services.submit_screening(draft_id=draft.pk, user=staff_user)
    assert_nothing_written(draft, before)

    screening = services.submit_screening(draft_id=draft.pk, user=staff_user)
    draft.refresh_from_db()
    assert draft.screening_id == screening.pk
    assert screening.flags.count() > 0
    assert AuditEvent.objects.filter(action=SUBMITTED).count() == 1


def test_a_fault_on_one_of_concurrent_submissions_does_not_affect_the_others(
    staff_user, monkeypatch
):
    drafts = [make_draft(staff_user, flagged_answers()) for _ in range(5)]
    doomed = drafts[2]
    real = Flag.objects.bulk_create

    def flaky(objs, *args, **kwargs):
        objs = list(objs)
        if objs and objs[0].screening.patient_first_name == "Doomed":
            raise Boom("injected fault")
        return real(objs, *args, **kwargs)

    doomed.answers = {**doomed.answers, "first_name": "Doomed"}
    doomed.save(update_fields=["answers"])
    before = dict(doomed.answers)
    monkeypatch.setattr(Flag.objects, "bulk_create", flaky)
    outcomes = run_threads(
        [
            (lambda draft=draft: services.submit_screening(draft_id=draft.pk, user=staff_user).pk)
            for draft in drafts
        ]
    )
    assert isinstance(outcomes[2], Boom)
    assert all(isinstance(outcomes[index], int) for index in (0, 1, 3, 4))
    doomed.refresh_from_db()
    assert doomed.screening_id is None and doomed.answers == before
    assert Screening.objects.count() == 4
    assert not Screening.objects.filter(patient_first_name="Doomed").exists()


# ---------------------------------------------------------------------------
# The same faults through the wizard's review step


class BrokenRules:
    """The rules module with a failing ``evaluate``."""

    evaluate = staticmethod(_raise)

    def __getattr__(self, name):
        return getattr(rules, name)


@pytest.fixture
def wizard_draft(client, staff_user):
    """Return a draft completed through the wizard up to the review step (not submitted)."""
    client.force_login(staff_user)
    client.post(reverse("intake:new_screening"))
    draft = Draft.objects.latest("pk")
    answers = quiet_answers(staff_attestation=None)
    for slug in applicable_steps(answers):
        if slug != "review":
            assert client.post(step_url(draft, slug), post_data(slug, answers)).status_code == 302
    draft.refresh_from_db()
    return draft


@pytest.mark.parametrize("fault", ["evaluate", "flag_insert", "snapshot_digest"])
def test_a_fault_while_submitting_from_the_wizard_shows_an_error_not_a_500(
    client, wizard_draft, monkeypatch, fault
):
    before = dict(wizard_draft.answers)
    if fault == "evaluate":
        # Only the submission's evaluate: the review page's preview keeps working.
        monkeypatch.setattr(services, "rules", BrokenRules())
    else:
        monkeypatch.setattr(*FAULTS[fault], _raise)
    client.raise_request_exception = False
    response = client.post(
        step_url(wizard_draft, "review"), {"review-staff_attestation": "on"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "could not be submitted" in page
    assert "injected fault" not in page
    wizard_draft.refresh_from_db()
    assert wizard_draft.screening_id is None
    assert Screening.objects.count() == 0

    monkeypatch.undo()
    response = client.post(step_url(wizard_draft, "review"), {"review-staff_attestation": "on"})
    wizard_draft.refresh_from_db()
    assert wizard_draft.screening_id is not None
    assert response["Location"] == wizard_draft.screening.get_absolute_url()
    kept = instrument.decode_answers(wizard_draft.screening.answers)
    assert all(kept[code] == value for code, value in instrument.decode_answers(before).items())
