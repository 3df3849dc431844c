import datetime as dt
import importlib

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from intake.models import AuditEvent, Role
from tests.conftest import PASSWORD
from tests.factories import make_screening
from tests.test_security import lock_out, sign_in

pytestmark = pytest.mark.django_db

ROLES_MIGRATION = "intake.migrations.0004_clinic_admin_lockouts_audit_log"


def changelist():
    return reverse("admin:axes_accessattempt_changelist")


def delete_url(attempt):
    return reverse("admin:axes_accessattempt_delete", args=[attempt.pk])


def group_permissions(role):
    group = Group.objects.get(name=role)
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_clinic_admin_sees_a_lockout_lifts_it_and_the_user_signs_in(staff_user, clinic_admin):
    lock_out(Client(), "staff")
    assert sign_in(Client(), "staff", PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="staff")
    admin = Client()
    admin.force_login(clinic_admin)

    listing = admin.get(changelist())
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "staff" in page and "Locked out now" in page
    confirm = admin.get(delete_url(attempt))
    assert confirm.status_code == 200
    response = admin.post(delete_url(attempt), {"post": "yes"})

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    lifted = AuditEvent.objects.get(action="intake.auth.lockout_lifted")
    assert lifted.actor == clinic_admin
    assert lifted.detail == {"username": "staff", "failures": 5, "locked_out": True}
    assert lifted.object_type == "accessattempt" and lifted.object_id == str(attempt.pk)
    again = Client()
    assert sign_in(again, "staff", PASSWORD).status_code == 302
    assert again.session["_auth_user_id"] == str(staff_user.pk)


def test_the_bulk_lift_action_audits_every_lockout_it_lifts(staff_user, clinician, clinic_admin):
    lock_out(Client(), "staff")
    lock_out(Client(), "clinician", ip="10.0.0.2")
    sign_in(Client(), "typed-a-secret", "wrong-password", ip="10.0.0.3")
    admin = Client()
    admin.force_login(clinic_admin)

    response = admin.post(
        changelist(),
        {
            "action": "lift_lockouts",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    rows = AuditEvent.objects.filter(action="intake.auth.lockout_lifted")
    assert {row.actor for row in rows} == {clinic_admin}
    assert sorted((row.detail["username"] or "", row.detail["locked_out"]) for row in rows) == [
        ("", False),
        ("clinician", True),
        ("staff", True),
    ]
    assert "typed-a-secret" not in str(list(AuditEvent.objects.values_list("detail", flat=True)))


def test_lifting_a_lockout_is_worded_as_lifting_it_not_deleting_records(
    staff_user, clinician, clinic_admin
):
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    attempt = AccessAttempt.objects.get()
    change = admin.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk]))
    html = change.content.decode()
    assert f'href="{delete_url(attempt)}" class="deletelink">Lift lockout</a>' in html
    assert ">Delete<" not in html

    confirm = admin.get(delete_url(attempt))
    html = confirm.content.decode()
    assert confirm.context["title"] == "Lift lockout"
    assert "Lift the lockout of <strong>staff</strong>? They can sign in again at once." in html
    assert '<input type="submit" value="Lift lockout">' in html
    assert "delete" not in html.split('id="content"')[1].split('id="deleted-objects"')[0].lower()
    assert "Yes, I’m sure" not in html and "Are you sure" not in html

    done = admin.post(delete_url(attempt), {"post": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == changelist()
    assert [str(m) for m in done.context["messages"]] == [
        "Lockout lifted: staff can sign in again."
    ]
    assert AuditEvent.objects.filter(action="intake.auth.lockout_lifted").count() == 1

    lock_out(Client(), "staff")
    lock_out(Client(), "clinician", ip="10.0.0.2")
    selected = list(AccessAttempt.objects.order_by("username").values_list("pk", flat=True))
    data = {"action": "lift_lockouts", "_selected_action": selected}
    confirm = admin.post(changelist(), data)
    html = confirm.content.decode()
    assert confirm.context["title"] == "Lift lockouts"
    assert "Lift the selected lockouts? Each person can sign in again at once." in html
    assert '<input type="submit" value="Lift lockouts">' in html
    assert "Are you sure" not in html and "Delete multiple objects" not in html
    done = admin.post(changelist(), {**data, "post": "yes"}, follow=True)
    assert [str(m) for m in done.context["messages"]] == [
        "2 lockouts lifted: clinician, staff can sign in again."
    ]
    assert "Successfully deleted" not in done.content.decode()
    assert AuditEvent.objects.filter(action="intake.auth.lockout_lifted").count() == 3


@pytest.mark.parametrize("garbled", ["abc", "1.5", ""])
def test_a_bulk_action_on_a_selection_it_does_not_understand_does_nothing(
    staff_user, clinic_admin, garbled
):
    lock_out(Client(), "staff")
    admin = Client()
    admin.force_login(clinic_admin)
    attempt = AccessAttempt.objects.get()
    response = admin.post(
        changelist(),
        {"action": "lift_lockouts", "_selected_action": [attempt.pk, garbled], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Nothing was done: the selection was not understood." in response.content.decode()
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not AuditEvent.objects.filter(action="intake.auth.lockout_lifted").exists()


def test_axes_clean_up_action_is_not_offered(clinic_admin):
    lock_out(Client(), "nobody")
    admin = Client()
    admin.force_login(clinic_admin)
    page = admin.get(changelist()).content.decode()
    assert '<option value="lift_lockouts">Lift the selected lockouts</option>' in page
    assert "delete_selected" not in page
    assert "cleanup_expired_attempts" not in page


def test_lockout_page_hides_the_raw_form_data(staff_user, clinic_admin):
    lock_out(Client(), "staff")
    admin = Client()
    admin.force_login(clinic_admin)
    attempt = AccessAttempt.objects.get()
    page = admin.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk]))
    assert page.status_code == 200
    assert "Form Data" not in page.content.decode()


def test_clinicians_and_staff_cannot_see_or_lift_lockouts(staff_user, clinician):
    lock_out(Client(), "staff")
    attempt = AccessAttempt.objects.get()
    doctor = Client()
    doctor.force_login(clinician)
    assert doctor.get(changelist()).status_code == 403
    assert doctor.post(delete_url(attempt), {"post": "yes"}).status_code == 403
    desk = Client()
    desk.force_login(staff_user)
    assert desk.post(delete_url(attempt), {"post": "yes"}).status_code == 403
    assert desk.get(changelist()).status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not AuditEvent.objects.filter(action="intake.auth.lockout_lifted").exists()


def test_axes_logs_stay_superuser_only(clinic_admin):
    admin = Client()
    admin.force_login(clinic_admin)
    assert admin.get(reverse("admin:axes_accesslog_changelist")).status_code == 403
    assert admin.get(reverse("admin:axes_accessfailurelog_changelist")).status_code == 403


def test_only_clinic_admins_read_the_audit_log(clinician, clinic_admin):
    url = reverse("admin:intake_auditevent_changelist")
    doctor = Client()
    doctor.force_login(clinician)
    assert doctor.get(url).status_code == 403
    admin = Client()
    admin.force_login(clinic_admin)
    assert admin.get(url).status_code == 200


def test_clinicians_still_see_a_screenings_history(staff_user, clinician):
    screening = make_screening(staff_user)
    doctor = Client()
    doctor.force_login(clinician)
    response = doctor.get(reverse("admin:intake_screening_change", args=[screening.pk]))
    assert response.status_code == 200
    history = [
        (event.action, event.actor_username) for event, _label in response.context["history"]
    ]
    assert ("intake.screening.submitted", "staff") in history
    assert ("intake.screening.viewed", "clinician") in history
    assert "intake.screening.submitted" in response.content.decode()


def test_migration_grants_lockouts_to_clinic_admins_and_is_reversible():
    migration = importlib.import_module(ROLES_MIGRATION)
    lockouts = {"axes.view_accessattempt", "axes.delete_accessattempt"}
    assert lockouts <= group_permissions(Role.CLINIC_ADMIN)
    assert "intake.view_auditevent" in group_permissions(Role.CLINIC_ADMIN)
    assert "intake.view_auditevent" not in group_permissions(Role.CLINICIAN)
    assert not lockouts & group_permissions(Role.CLINICIAN)
    assert not lockouts & group_permissions(Role.INTAKE_STAFF)

    migration.restore_roles(apps, None)
    assert not lockouts & group_permissions(Role.CLINIC_ADMIN)
    assert "intake.view_auditevent" in group_permissions(Role.CLINICIAN)
    assert "intake.view_auditevent" in group_permissions(Role.CLINIC_ADMIN)

    migration.update_roles(apps, None)
    assert lockouts <= group_permissions(Role.CLINIC_ADMIN)
    assert "intake.view_auditevent" not in group_permissions(Role.CLINICIAN)


def test_the_review_panel_titles_lockouts_for_clinic_admins(client, clinic_admin):
    client.force_login(clinic_admin)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Sign-in lockouts" in html and ">Axes<" not in html


# ---------------------------------------------------------------------------
# Times in the clinic's time zone


def shown(value):
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def in_utc(value):
    return date_format(value.astimezone(dt.UTC), "DATETIME_FORMAT")


def signed_in_admin(clinic_admin):
    # Signed in before the attempts exist: a sign-in clears attempts whose cool-off ended.
    admin = Client()
    admin.force_login(clinic_admin)
    return admin


def assert_local_only(html, attempt, *times):
    assert str(attempt) not in html and "+00:00" not in html  # axes' own UTC title
    for value in times:
        assert shown(value) in html
        assert in_utc(value) not in html


def test_lockout_pages_show_the_clinics_time(staff_user, clinic_admin):
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    attempt = AccessAttempt.objects.get()
    ends = attempt.attempt_time + dt.timedelta(minutes=15)
    assert shown(attempt.attempt_time) != in_utc(attempt.attempt_time)

    listing = admin.get(changelist()).content.decode()
    assert_local_only(listing, attempt, attempt.attempt_time, ends)
    assert f"Locked out until {shown(ends)}" in listing
    assert (
        f"Select this object for an action - Attempted access: {shown(attempt.attempt_time)}"
        in (listing)
    )

    change = admin.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk]))
    html = change.content.decode()
    assert_local_only(html, attempt, attempt.attempt_time, ends)
    assert change.context["subtitle"] == f"Attempted access: {shown(attempt.attempt_time)}"
    assert "Attempt Time:" in html and "Status:" in html

    history = admin.get(reverse("admin:axes_accessattempt_history", args=[attempt.pk]))
    assert_local_only(history.content.decode(), attempt, attempt.attempt_time)


def test_lift_confirmation_and_log_show_the_clinics_time(staff_user, clinic_admin):
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    attempt = AccessAttempt.objects.get()
    title = f"Attempted access: {shown(attempt.attempt_time)}"

    confirm = admin.get(delete_url(attempt)).content.decode()
    assert_local_only(confirm, attempt, attempt.attempt_time)
    url = reverse("admin:axes_accessattempt_change", args=[attempt.pk])
    assert f'<a href="{url}">{title}</a>' in confirm  # breadcrumbs
    assert f'Access attempt: <a href="{url}">{title}</a>' in confirm

    done = admin.post(delete_url(attempt), {"post": "yes"}, follow=True)
    assert [str(message) for message in done.context["messages"]] == [
        "Lockout lifted: staff can sign in again."
    ]
    assert LogEntry.objects.get().object_repr == title
    index = admin.get(reverse("admin:index")).content.decode()
    assert_local_only(index, attempt, attempt.attempt_time)  # "Recent actions"


def test_bulk_lift_confirmation_shows_the_clinics_time(staff_user, clinician, clinic_admin):
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    sign_in(Client(), "clinician", "wrong-password", ip="10.0.0.2")
    AccessAttempt.objects.filter(username="clinician").update(
        attempt_time=timezone.now() - dt.timedelta(minutes=3)
    )
    attempts = list(AccessAttempt.objects.all())

    page = admin.post(
        changelist(),
        {"action": "lift_lockouts", "_selected_action": [a.pk for a in attempts]},
    ).content.decode()

    for attempt in attempts:
        assert_local_only(page, attempt, attempt.attempt_time)
        url = reverse("admin:axes_accessattempt_change", args=[attempt.pk])
        assert f'<a href="{url}">Attempted access: {shown(attempt.attempt_time)}</a>' in page
    assert AccessAttempt.objects.count() == 2


def test_status_says_how_many_tries_are_left_or_when_the_lockout_ended(
    staff_user, clinician, clinic_admin
):
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    sign_in(Client(), "clinician", "wrong-password", ip="10.0.0.2")
    sign_in(Client(), "clinician", "wrong-password", ip="10.0.0.2")
    locked_at = timezone.now() - dt.timedelta(minutes=20)
    AccessAttempt.objects.filter(username="staff").update(attempt_time=locked_at)

    listing = admin.get(changelist()).content.decode()

    assert f"Lockout ended {shown(locked_at + dt.timedelta(minutes=15))}" in listing
    assert "3 attempts left" in listing


def test_lifting_a_lockout_whose_cool_off_ended_says_it_was_no_longer_locked(
    staff_user, clinic_admin
):
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=20))
    attempt = AccessAttempt.objects.get()

    admin.post(delete_url(attempt), {"post": "yes"})

    lifted = AuditEvent.objects.get(action="intake.auth.lockout_lifted")
    assert lifted.detail == {"username": "staff", "failures": 5, "locked_out": False}
    assert not AuditEvent.objects.filter(action="intake.auth.lockout_expired").exists()


def filtered_usernames(admin, value):
    response = admin.get(changelist(), {"lockout": value})
    assert response.status_code == 200
    return sorted(row.username for row in response.context["cl"].result_list)


@pytest.mark.parametrize("cool_off_minutes", [15, None])
def test_the_lockout_filter_tells_lockouts_in_force_from_ended_ones(
    settings, cool_off_minutes, staff_user, clinician, clinic_admin, make_user
):
    settings.AXES_COOLOFF_TIME = cool_off_minutes and dt.timedelta(minutes=cool_off_minutes)
    make_user("frontdesk", Role.INTAKE_STAFF)
    admin = signed_in_admin(clinic_admin)
    lock_out(Client(), "staff")
    lock_out(Client(), "clinician", ip="10.0.0.2")
    sign_in(Client(), "frontdesk", "wrong-password", ip="10.0.0.3")
    # The clinician's lockout began 20 minutes ago: with a cool-off it has ended.
    AccessAttempt.objects.filter(username="clinician").update(
        attempt_time=timezone.now() - dt.timedelta(minutes=20)
    )

    page = admin.get(changelist()).content.decode()
    assert "Locked out now" in page and "Lockout ended" in page and "Not locked out" in page
    if cool_off_minutes:
        assert filtered_usernames(admin, "now") == ["staff"]
        assert filtered_usernames(admin, "ended") == ["clinician"]
    else:  # locked until a clinic admin lifts it
        assert filtered_usernames(admin, "now") == ["clinician", "staff"]
        assert filtered_usernames(admin, "ended") == []
    assert filtered_usernames(admin, "none") == ["frontdesk"]
    assert len(admin.get(changelist()).context["cl"].result_list) == 3


def test_sign_ins_posted_to_the_panels_address_count_toward_the_apps_lockout(clinician):
    url = reverse("admin:login")
    responses = lock_out(Client(), "clinician", url=url)
    assert [response.status_code for response in responses] == [200, 200, 200, 200, 429]
    # The same lockout on the app's sign-in page, with the app's message.
    locked = sign_in(Client(), "clinician", PASSWORD)
    assert locked.status_code == 429
    assert 'id="login-lockout"' in locked.content.decode()
    again = Client()
    assert sign_in(again, "clinician", PASSWORD, url=url).status_code == 429
    assert "_auth_user_id" not in again.session
