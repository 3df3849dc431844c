"""The audit trail: one row per read or write of a screening, append-only down to the database."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from intake import audit, reviews, thresholds
from intake.models import AuditEvent, Determination, ImmutableRecordError
from tests.conftest import PASSWORD, last_id
from tests.review_data import flagged_screening, sign_review
from tests.test_security import lock_out, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def screening(staff_user):
    return flagged_screening(staff_user, ["SUI-01", "BP-01"])


def new_rows(before):
    return list(AuditEvent.objects.filter(pk__gt=before).order_by("id"))


def url(name, screening):
    return reverse(f"admin:intake_screening_{name}", args=[screening.pk])


def page_state(screening):
    """Return the hidden fields a screening's forms carry: its reviewer and signed review."""
    screening.refresh_from_db()
    review = reviews.current_review(screening)
    return {
        "claimed_by": screening.claimed_by_id or "",
        "review": review.pk if review else "",
        "reviews_seen": screening.reviews.count(),
    }


def review_data():
    return {
        "ack_SUI-01": "on",
        "determination": Determination.objects.first().pk,
        "note": "Reviewed in clinic.",
        "password": PASSWORD,
    }


# (who, prepare(screening, users), method, url name, data, expected action)
STEPS = [
    ("clinician", None, "get", "change", None, "intake.screening.viewed"),
    ("clinician", None, "post", "claim", {}, "intake.screening.claimed"),
    ("clinician", "claim", "post", "release", {}, "intake.screening.released"),
    ("clinician", None, "get", "review", None, "intake.screening.viewed"),
    ("clinician", None, "post", "review", review_data, "intake.review.signed"),
    ("clinician", None, "post", "review", {"note": "x"}, "intake.screening.viewed"),
    ("clinician", "sign", "get", "addendum", None, "intake.screening.viewed"),
    (
        "clinician",
        "sign",
        "post",
        "addendum",
        {"text": "Addendum.", "password": PASSWORD},
        "intake.addendum.signed",
    ),
    ("clinic_admin", "sign", "get", "unlock", None, "intake.screening.viewed"),
    ("clinic_admin", "sign", "post", "unlock", {"reason": "Typo"}, "intake.screening.unlocked"),
]


@pytest.mark.parametrize(
    ("who", "prepare", "method", "name", "data", "action"),
    STEPS,
    ids=[f"{step[2]}-{step[3]}-{step[5]}" for step in STEPS],
)
def test_each_admin_read_and_write_of_a_screening_leaves_exactly_one_audit_row(
    client, screening, clinician, clinic_admin, who, prepare, method, name, data, action
):
    users = {"clinician": clinician, "clinic_admin": clinic_admin}
    if prepare == "claim":
        reviews.claim_screening(screening_id=screening.pk, user=clinician)
    elif prepare == "sign":
        sign_review(screening, clinician)
    before = last_id()
    client.force_login(users[who])
    payload = data() if callable(data) else data
    if method == "post":
        payload = {**page_state(screening), **(payload or {})}
    response = getattr(client, method)(url(name, screening), payload or {})
    assert response.status_code in (200, 302)
    rows = [row for row in new_rows(before) if not row.action.startswith("intake.auth.")]
    assert [row.action for row in rows] == [action]
    row = rows[0]
    assert row.actor == users[who]
    assert row.object_type == "screening" and row.object_id == str(screening.pk)
    assert row.ip == "127.0.0.1"


@pytest.mark.parametrize(
    "view", ["intake:screening", "intake:screening_pdf", "intake:screening_fhir"]
)
def test_each_staff_read_of_a_screening_leaves_exactly_one_audit_row(
    client, screening, clinician, view
):
    client.force_login(clinician)
    before = last_id()
    response = client.get(reverse(view, args=[screening.pk]))
    assert response.status_code == 200
    rows = new_rows(before)
    assert len(rows) == 1
    assert rows[0].object_id == str(screening.pk)


def test_the_queue_writes_one_row_without_patient_data(client, screening, clinician):
    client.force_login(clinician)
    before = last_id()
    client.post(reverse("admin:intake_screening_search"), {"q": "Rivera"}, follow=True)
    rows = new_rows(before)
    assert [row.action for row in rows] == ["intake.screening.listed"]
    assert rows[0].detail == {"results": 1, "shown": [screening.pk]}


def test_export_writes_one_row_with_count_and_ids(client, screening, clinic_admin):
    client.force_login(clinic_admin)
    before = last_id()
    response = client.post(
        reverse("admin:intake_screening_changelist"),
        {"action": "export_csv", "_selected_action": [screening.pk], "index": "0"},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = new_rows(before)
    assert [(row.action, row.detail) for row in rows] == [
        ("intake.screening.exported", {"count": 1, "ids": [screening.pk]})
    ]


def test_threshold_changes_are_audited_with_old_and_new_values(client, clinic_admin):
    client.force_login(clinic_admin)
    data = {name: str(value) for name, value in thresholds.DEFAULTS.items()}
    data.update(npo_solid_hours="8", note="Anesthesia protocol", based_on_version="0")
    before = last_id()
    client.post(reverse("admin:intake_thresholdset_add"), data)
    rows = new_rows(before)
    assert [row.action for row in rows] == ["intake.thresholds.changed"]
    assert rows[0].detail["changes"] == {"npo_solid_hours": ["6", "8"]}
    assert rows[0].actor == clinic_admin


def test_renaming_a_determination_option_is_audited_with_old_and_new_labels(client, clinic_admin):
    client.force_login(clinic_admin)
    option = Determination.objects.get(label="Referred elsewhere")
    url = reverse("admin:intake_determination_change", args=[option.pk])
    data = {"label": "Referred to another service", "position": option.position, "active": "on"}
    before = last_id()
    assert client.post(url, data).status_code == 302
    rows = new_rows(before)
    assert [row.action for row in rows] == ["intake.determination.changed"]
    assert rows[0].object_id == str(option.pk) and rows[0].actor == clinic_admin
    assert rows[0].detail == {
        "label": "Referred to another service",
        "active": True,
        "fields": ["label"],
        "changes": {"label": ["Referred elsewhere", "Referred to another service"]},
    }
    before = last_id()
    moved = {"label": data["label"], "position": option.position + 5}  # "active" unticked
    client.post(url, moved)
    assert new_rows(before)[0].detail["changes"] == {
        "position": [option.position, option.position + 5],
        "active": [True, False],
    }


def test_audit_details_never_hold_answers_or_names(client, screening, clinician, clinic_admin):
    client.force_login(clinician)
    client.get(url("change", screening))
    client.post(url("review", screening), {**review_data(), **page_state(screening)})
    assert AuditEvent.objects.filter(action="intake.review.signed").exists()
    data = {"text": "Rivera called back.", "password": PASSWORD, **page_state(screening)}
    client.post(url("addendum", screening), data)
    client.force_login(clinic_admin)
    client.post(url("unlock", screening), {"reason": "Alex asked", **page_state(screening)})
    assert AuditEvent.objects.filter(action="intake.screening.unlocked").exists()
    for event in AuditEvent.objects.all():
        text = repr(event.detail)
        for secret in ("Rivera", "Alex", "MRN-1001", "Reviewed in clinic", PASSWORD):
            assert secret not in text


def test_an_account_created_on_the_command_line_is_audited_as_such(monkeypatch):
    monkeypatch.setenv("NEW_PW", "a-long-enough-password-42")
    call_command("create_user", "nurse1", "--role", "intake_staff", "--password-env", "NEW_PW")
    event = AuditEvent.objects.get(action="intake.user.created")
    assert event.actor is None and event.object_type == "user"
    assert event.detail == {"role": "intake_staff", "source": "manage.py create_user"}


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm():
    event = AuditEvent.objects.create(action="intake.test.event")
    event.action = "intake.test.changed"
    with pytest.raises(ImmutableRecordError):
        event.save()
    with pytest.raises(ImmutableRecordError):
        event.delete()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE intake_auditevent SET action = 'intake.tampered' WHERE id = %s",
        "DELETE FROM intake_auditevent WHERE id = %s",
    ],
)
def test_postgresql_refuses_update_and_delete_of_audit_rows(sql):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL (CI pass)")
    event = AuditEvent.objects.create(action="intake.test.event")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "intake.test.event"


def test_password_changes_are_audited_without_the_password(client, staff_user, clinic_admin):
    client.force_login(staff_user)
    before = last_id()
    new_password = "A-new-passphrase-2026"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    client.force_login(clinic_admin)
    url = reverse("admin:auth_user_password_change", args=[staff_user.pk])
    other = "Another-passphrase-2026"
    response = client.post(url, {"password1": other, "password2": other, "usable_password": "true"})
    assert response.status_code == 302
    client.post(url, {"password1": "short", "password2": "nope"})  # refused: not audited
    rows = new_rows(before)
    changed = [row for row in rows if row.action == "intake.user.password_changed"]
    assert [(row.actor_username, row.object_id, row.detail) for row in changed] == [
        (staff_user.username, str(staff_user.pk), {"by": "self"}),
        (clinic_admin.username, str(staff_user.pk), {"by": "admin"}),
    ]
    assert not any(new_password in str(row.detail) or other in str(row.detail) for row in rows)


def test_every_action_the_app_writes_has_a_label():
    source = "".join(path.read_text() for path in Path(audit.__file__).parent.glob("**/*.py"))
    written = set(re.findall(r'action="(intake\.[a-z_.]+)"', source))
    assert len(written) > 20
    assert written <= set(audit.ACTION_LABELS), written - set(audit.ACTION_LABELS)


def test_the_log_shows_what_each_action_means_in_local_time(client, screening, clinic_admin):
    client.force_login(clinic_admin)
    client.get(reverse("admin:intake_screening_change", args=[screening.pk]))
    html = client.get(reverse("admin:intake_auditevent_changelist")).content.decode()
    assert "Screening viewed" in html and "intake.screening.viewed" in html
    assert "<title>Audit log |" in html
    latest = AuditEvent.objects.latest("id")
    assert f"{timezone.localtime(latest.at):%Y-%m-%d %H:%M:%S}" in html  # seconds, local time
    filtered = client.get(
        reverse("admin:intake_auditevent_changelist"), {"action": "intake.screening.viewed"}
    )
    assert {row.action for row in filtered.context["cl"].result_list} == {"intake.screening.viewed"}
    assert "Screening viewed" in str(filtered.context["cl"].filter_specs[0].lookup_choices)
    event = AuditEvent.objects.filter(action="intake.screening.viewed").latest("id")
    with timezone.override("Pacific/Auckland"):
        assert str(event).startswith(f"{timezone.localtime(event.at):%Y-%m-%d %H:%M}")
    detail = client.get(reverse("admin:intake_auditevent_change", args=[event.pk]))
    detail = detail.content.decode()
    assert f"{timezone.localtime(event.at):%Y-%m-%d %H:%M:%S}" in detail
    assert "Screening viewed" in detail and "intake.screening.viewed" in detail
    history = client.get(reverse("admin:intake_screening_change", args=[screening.pk]))
    assert "Screening viewed" in history.content.decode().split('id="history"')[1]


def actor_cells(response):
    """Return each listed row's action and actor column as the log shows them."""
    admin = response.context["cl"].model_admin
    return [(row.action, admin.actor_column(row)) for row in response.context["cl"].result_list]


def test_the_log_names_the_username_tried_at_a_failed_sign_in_and_finds_it(
    client, staff_user, clinician, clinic_admin
):
    sign_in(Client(), "staff", "wrong-password")
    lock_out(Client(), "clinician", ip="10.0.0.2")
    sign_in(Client(), "typed-a-secret", "wrong-password", ip="10.0.0.3")
    client.force_login(clinic_admin)
    url = reverse("admin:intake_auditevent_changelist")

    response = client.get(url)
    html = response.content.decode()
    assert "staff (attempted)" in html and "clinician (attempted)" in html
    assert "unknown username (attempted)" in html
    assert "typed-a-secret" not in html
    cells = set(actor_cells(response))
    assert ("intake.auth.login_failed", "staff (attempted)") in cells
    assert ("intake.auth.locked_out", "clinician (attempted)") in cells
    assert ("intake.auth.login", "clinicadmin") in cells

    # The search finds rows by the signed-in user, or by the username tried.
    found = actor_cells(client.get(url, {"q": "staff"}))
    assert found == [("intake.auth.login_failed", "staff (attempted)")]
    found = actor_cells(client.get(url, {"q": "clinician"}))
    assert set(found) == {
        ("intake.auth.login_failed", "clinician (attempted)"),
        ("intake.auth.locked_out", "clinician (attempted)"),
    }
    found = actor_cells(client.get(url, {"q": "clinicadmin"}))
    assert found and {actor for _action, actor in found} == {"clinicadmin"}
    # Nothing new is stored: the rows keep no typed name that is no account's.
    assert "typed-a-secret" not in str(list(AuditEvent.objects.values_list("detail", flat=True)))
