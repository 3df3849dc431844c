"""The purge_drafts command: old unsubmitted drafts go, with one audit row each."""

import datetime as dt
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from intake.models import AuditEvent, Draft
from tests.factories import make_screening


def make_old(user, days):
    draft = Draft.objects.create(created_by=user, answers={"first_name": "Old"})
    Draft.objects.filter(pk=draft.pk).update(updated_at=timezone.now() - dt.timedelta(days=days))
    return draft


def test_purge_deletes_old_unsubmitted_drafts_only(staff_user, settings):
    settings.DRAFT_MAX_AGE_DAYS = 30
    old = make_old(staff_user, 31)
    fresh = make_old(staff_user, 29)
    submitted = make_screening(staff_user).draft
    Draft.objects.filter(pk=submitted.pk).update(updated_at=timezone.now() - dt.timedelta(days=90))
    out = StringIO()
    call_command("purge_drafts", stdout=out)
    assert "Deleted 1 draft" in out.getvalue()
    assert set(Draft.objects.values_list("pk", flat=True)) == {fresh.pk, submitted.pk}
    event = AuditEvent.objects.get(action="intake.draft.purged")
    assert event.object_id == str(old.pk)
    assert "Old" not in str(event.detail)


def test_purge_days_option(staff_user):
    make_old(staff_user, 5)
    out = StringIO()
    call_command("purge_drafts", "--days", "3", stdout=out)
    assert "Deleted 1 draft" in out.getvalue()
    assert not Draft.objects.exists()
