import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, path, reverse, reverse_lazy
from django.utils import timezone

from intake import checks, pdf
from intake.models import AuditEvent
from tests.conftest import PASSWORD, last_id

ROOT = Path(__file__).resolve().parent.parent
LOCKOUT_TEXT = "Too many failed sign-in attempts. Try again in 15 minutes or ask a clinic admin."
EXPECTED_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}


def parse_csp(header):
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def sign_in(client, username, password, ip="10.0.0.1", url=None):
    return client.post(
        url or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter with only ``env`` (plus PATH) in its environment."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    if "DATABASE_URL" in os.environ:
        environment.setdefault("DATABASE_URL", os.environ["DATABASE_URL"])
    return subprocess.run(
        [sys.executable, *code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "intake.example.org",
    "CLINIC_SUICIDE_SAFETY_PROTOCOL": "Stay with the patient and call the clinician on duty.",
}


# ---------------------------------------------------------------------------
# Headers and production settings


@pytest.mark.django_db
def test_signed_in_page_sends_strict_csp_and_security_headers(client, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("intake:home"))

    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert parse_csp(csp) == EXPECTED_CSP
    assert "unsafe" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def cache_directives(response):
    return {part.strip() for part in response.headers.get("Cache-Control", "").split(",")}


@pytest.mark.django_db
def test_no_page_with_patient_data_may_be_cached(client, staff_user):
    from tests.factories import make_draft, make_screening

    screening = make_screening(staff_user)
    draft = make_draft(staff_user)
    client.force_login(staff_user)
    for url in (
        reverse("intake:home"),
        screening.get_absolute_url(),
        reverse("intake:wizard_step", kwargs={"draft_id": draft.pk, "step": "patient"}),
        reverse("password_change"),
        reverse("login"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert {"no-store", "private", "max-age=0"} <= cache_directives(response), url


def test_a_response_that_sets_its_own_caching_keeps_it(rf):
    from django.http import HttpResponse

    from intake.security import NoStoreMiddleware

    def view(request):
        response = HttpResponse("static-like")
        response["Cache-Control"] = "max-age=60, public"
        return response

    response = NoStoreMiddleware(view)(rf.get("/"))
    assert cache_directives(response) == {"max-age=60", "public"}
    plain = NoStoreMiddleware(lambda request: HttpResponse("page"))(rf.get("/"))
    assert {"no-store", "private"} <= cache_directives(plain)


@pytest.mark.django_db
def test_login_page_sends_the_same_headers(client):
    response = client.get(reverse("login"))
    assert parse_csp(response.headers["Content-Security-Policy"]) == EXPECTED_CSP
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_hsts_is_sent_over_https(client):
    response = client.get(reverse("login"), secure=True)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_production_settings_are_secure_by_default():
    code = (
        "import json, intake.settings as s; print(json.dumps({k: getattr(s, k, None) for k in ["
        "'DEBUG', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
        "'SESSION_COOKIE_HTTPONLY', 'CSRF_COOKIE_HTTPONLY', 'SECURE_HSTS_SECONDS',"
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER', 'X_FRAME_OPTIONS',"
        "'SESSION_COOKIE_AGE', 'AXES_FAILURE_LIMIT']}"
        " | {'storage': s.STORAGES['staticfiles']['BACKEND'],"
        " 'cooloff': s.AXES_COOLOFF_TIME.total_seconds()}))"
    )
    result = run_python(["-c", code], **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "X_FRAME_OPTIONS": "DENY",
        "SESSION_COOKIE_AGE": 900,
        "AXES_FAILURE_LIMIT": 5,
        "storage": "whitenoise.storage.CompressedManifestStaticFilesStorage",
        "cooloff": 900.0,
    }


def test_timeouts_and_lockout_limits_come_from_the_environment():
    code = (
        "import json, intake.settings as s; print(json.dumps([s.SESSION_COOKIE_AGE,"
        " s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), s.SECURE_SSL_REDIRECT,"
        " s.SECURE_PROXY_SSL_HEADER]))"
    )
    result = run_python(
        ["-c", code],
        **PRODUCTION_ENV,
        IDLE_TIMEOUT_MINUTES="5",
        AXES_FAILURE_LIMIT="3",
        AXES_COOLOFF_MINUTES="30",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_SECURE_PROXY_SSL_HEADER="1",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [300, 3, 1800.0, False, ["HTTP_X_FORWARDED_PROTO", "https"]]


def test_deploy_checks_pass_with_production_environment():
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION_ENV
    )
    output = result.stdout + result.stderr
    if not pdf.harfbuzz_subset_available() and not os.environ.get("CI"):
        # A development machine may lack the system's font subsetter (CI installs it, as
        # production must): then its warning is the only one allowed.
        assert result.returncode != 0 and "intake.W002" in output, output
        assert output.count("intake.W") == 1, output
        return
    assert result.returncode == 0, output


def test_deploy_checks_warn_when_weasyprint_lacks_harfbuzz_subset(monkeypatch):
    monkeypatch.setattr(pdf, "harfbuzz_subset_available", lambda: False)
    warnings = checks.check_pdf_font_subsetting(None)
    assert [warning.id for warning in warnings] == ["intake.W002"]
    assert "libharfbuzz-subset0" in warnings[0].hint
    monkeypatch.setattr(pdf, "harfbuzz_subset_available", lambda: True)
    assert checks.check_pdf_font_subsetting(None) == []


class FakeHarfBuzz:
    def __init__(self, version):
        self.version = version

    def hb_version_atleast(self, major, minor, micro):
        return self.version >= (major, minor, micro)


@pytest.mark.parametrize(
    ("subset_library", "version", "available"),
    [
        (None, (10, 2, 0), False),  # the library is not installed
        (object(), (4, 0, 9), False),  # too old for WeasyPrint's HarfBuzz subsetting
        (object(), (4, 1, 0), True),
        (object(), (6, 0, 0), True),
    ],
)
def test_harfbuzz_subset_is_available_only_when_installed_and_new_enough(
    monkeypatch, subset_library, version, available
):
    monkeypatch.setattr(pdf.weasyprint_ffi, "harfbuzz_subset", subset_library)
    monkeypatch.setattr(pdf.weasyprint_ffi, "harfbuzz", FakeHarfBuzz(version))
    assert pdf.harfbuzz_subset_available() is available


def test_deploy_checks_warn_when_the_clinic_protocol_is_not_configured():
    env = {**PRODUCTION_ENV, "CLINIC_SUICIDE_SAFETY_PROTOCOL": "  "}
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "intake.W001" in output and "CLINIC_SUICIDE_SAFETY_PROTOCOL is not set" in output


# ---------------------------------------------------------------------------
# Sign-in lockout and sign-in audit


def lock_out(client, username="staff", ip="10.0.0.1", url=None):
    responses = [sign_in(client, username, "wrong-password", ip=ip, url=url) for _ in range(5)]
    return responses


@pytest.mark.django_db
def test_five_failed_sign_ins_lock_the_username_from_that_address(client, staff_user):
    responses = lock_out(client)

    for response in responses[:4]:
        assert response.status_code == 200
        assert "Too many failed" not in response.content.decode()
    assert responses[4].status_code == 429
    assert LOCKOUT_TEXT in responses[4].content.decode()

    right_password = sign_in(client, "staff", PASSWORD)
    assert right_password.status_code == 429
    assert LOCKOUT_TEXT in right_password.content.decode()
    assert "_auth_user_id" not in client.session


def audit_trail():
    return [(event.action, event.detail) for event in AuditEvent.objects.order_by("id")]


FAILED = ("intake.auth.login_failed", {"username": "staff"})
LOCKED = ("intake.auth.locked_out", {"username": "staff"})


@pytest.mark.django_db
def test_each_attempt_writes_one_row_and_the_tripping_failure_two(client, staff_user):
    lock_out(client)
    sign_in(client, "staff", "wrong-password")  # refused: no password was checked
    sign_in(client, "staff", PASSWORD)  # refused as well

    assert audit_trail() == [FAILED] * 4 + [FAILED, LOCKED] + [LOCKED, LOCKED]
    assert {event.ip for event in AuditEvent.objects.all()} == {"10.0.0.1"}
    everything = json.dumps(list(AuditEvent.objects.values("detail")))
    assert "wrong-password" not in everything
    assert PASSWORD not in everything
    assert not AuditEvent.objects.filter(action="intake.auth.login").exists()


@pytest.mark.django_db
def test_the_rows_do_not_depend_on_which_receiver_runs_first(client, staff_user):
    from axes import signals as axes_signals
    from django.contrib.auth.signals import user_login_failed

    from intake import security

    # axes' receiver is connected first; put it last for this test.
    user_login_failed.disconnect(axes_signals.handle_user_login_failed)
    user_login_failed.connect(axes_signals.handle_user_login_failed)
    try:
        lock_out(client)
        sign_in(client, "staff", PASSWORD)
    finally:
        uid = "intake.security.audit_login_failed"
        user_login_failed.disconnect(dispatch_uid=uid)
        user_login_failed.connect(security.audit_login_failed, dispatch_uid=uid)

    assert audit_trail() == [FAILED] * 5 + [LOCKED, LOCKED]


@pytest.mark.django_db
def test_a_username_tried_in_another_case_records_the_accounts_spelling(client, staff_user):
    sign_in(client, "STAFF", "wrong-password")
    event = AuditEvent.objects.get(action="intake.auth.login_failed")
    assert event.detail == {"username": "staff"}


@pytest.mark.django_db
def test_accounts_differing_only_in_case_record_the_exact_one(client, make_user):
    make_user("Sam")
    make_user("sam")
    sign_in(client, "Sam", "wrong-password")
    sign_in(client, "SAM", "wrong-password")
    details = [
        event.detail
        for event in AuditEvent.objects.filter(action="intake.auth.login_failed").order_by("id")
    ]
    assert details == [{"username": "Sam"}, {"username": None, "unknown_username": True}]


@pytest.mark.django_db
def test_lockout_is_per_username_and_address(client, staff_user, clinician):
    lock_out(client, "staff", ip="10.0.0.1")

    other_address = Client()
    assert sign_in(other_address, "staff", PASSWORD, ip="10.0.0.2").status_code == 302
    other_user = Client()
    assert sign_in(other_user, "clinician", PASSWORD, ip="10.0.0.1").status_code == 302


def end_cool_off(minutes_ago=1):
    """Move every attempt back so its cool-off ended ``minutes_ago``; return when it ended."""
    locked_at = timezone.now() - dt.timedelta(minutes=15 + minutes_ago)
    AccessAttempt.objects.update(attempt_time=locked_at)
    return locked_at + dt.timedelta(minutes=15)


def expired_rows():
    return list(AuditEvent.objects.filter(action="intake.auth.lockout_expired"))


@pytest.mark.django_db
def test_sign_in_works_again_after_the_cool_off_and_the_end_is_audited(client, staff_user):
    lock_out(client)
    assert sign_in(client, "staff", PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get()
    ended = end_cool_off()
    assert not expired_rows()  # nothing announces the end itself

    response = sign_in(client, "staff", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff_user.pk)
    assert not AccessAttempt.objects.exists()
    assert [action for action, _detail in audit_trail()[-2:]] == [
        "intake.auth.lockout_expired",
        "intake.auth.login",
    ]
    [row] = expired_rows()
    assert row.actor is None and row.actor_username == "" and row.ip is None
    assert (row.object_type, row.object_id) == ("accessattempt", str(attempt.pk))
    assert row.detail == {
        "username": "staff",
        "failures": 5,
        "ended_at": timezone.localtime(ended).isoformat(timespec="seconds"),
    }
    assert row.detail["ended_at"].endswith(("-05:00", "-04:00"))  # the clinic's time


@pytest.mark.django_db
def test_a_wrong_password_after_the_cool_off_is_audited_after_the_end(client, staff_user):
    lock_out(client)
    end_cool_off()

    response = sign_in(client, "staff", "wrong-password")
    assert response.status_code == 200
    assert [action for action, _detail in audit_trail()[-2:]] == [
        "intake.auth.lockout_expired",
        "intake.auth.login_failed",
    ]
    assert AccessAttempt.objects.get().failures_since_start == 1  # counting starts again
    sign_in(client, "staff", "wrong-password")
    assert len(expired_rows()) == 1


@pytest.mark.django_db
def test_anyones_sign_in_clears_an_ended_lockout_and_it_is_not_theirs(staff_user, clinician):
    lock_out(Client(), "staff", ip="10.0.0.1")
    end_cool_off()

    other = Client()
    assert sign_in(other, "clinician", PASSWORD, ip="10.0.0.7").status_code == 302
    [row] = expired_rows()
    assert row.actor is None and row.ip is None
    assert row.detail["username"] == "staff"
    assert AuditEvent.objects.get(action="intake.auth.login").actor == clinician


@pytest.mark.django_db
def test_only_lockouts_whose_cool_off_ended_are_audited_as_ended(staff_user, clinician):
    lock_out(Client(), "staff")
    sign_in(Client(), "clinician", "wrong-password", ip="10.0.0.2")  # 1 failure, no lockout
    end_cool_off()
    lock_out(Client(), "staff", ip="10.0.0.3")  # a lockout still running

    sign_in(Client(), "clinician", PASSWORD, ip="10.0.0.4")

    assert [row.detail["username"] for row in expired_rows()] == ["staff"]
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["10.0.0.3"]


@pytest.mark.django_db
def test_an_ended_lockout_of_a_name_that_is_no_account_keeps_it_out(client, staff_user):
    typed = "Tr0ub4dor&3-typed-in-the-wrong-box"
    lock_out(client, typed)
    end_cool_off()
    sign_in(client, "staff", PASSWORD)

    [row] = expired_rows()
    assert row.detail["username"] is None and row.detail["unknown_username"] is True
    assert typed not in json.dumps(list(AuditEvent.objects.values("detail")))


@pytest.mark.django_db
def test_lockout_rows_never_keep_text_that_names_no_account(client, staff_user):
    from intake.security import NO_SUCH_ACCOUNT

    # A patient's name and MRN typed in the username box, then other unknown names.
    typed = ["Zanthia Quorvel QX-77123", "Tr0ub4dor&3", "nobody", "no-one", "zz"]
    for name in typed:
        sign_in(client, name, "wrong-password")
    keys = list(AccessAttempt.objects.values_list("username", flat=True))
    assert len(set(keys)) == 5
    assert all(key.startswith(NO_SUCH_ACCOUNT[:-1] + " ") for key in keys)
    stored = json.dumps(list(AccessAttempt.objects.values()), default=str)
    assert all(name not in stored for name in typed)


@pytest.mark.django_db
def test_a_name_that_is_no_account_locks_out_like_an_accounts(client, staff_user):
    # Its variants in case, width and surrounding spaces count together, as an account's do.
    variants = ["nobody", "NOBODY", " nobody ", "Ｎｏｂｏｄｙ", "NoBody"]
    responses = [sign_in(client, name, "wrong-password") for name in variants]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert AccessAttempt.objects.count() == 1
    # The account's own count is apart: staff can still sign in from the same address.
    assert sign_in(client, "staff", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_lockouts_do_not_tell_which_names_are_accounts(client, staff_user, clinician):
    # Guessing many names from one address: a name that is no account answers as an
    # account's does (a shared count used to run out and refuse only the others).
    for index in range(6):
        sign_in(client, f"guess-{index}", "wrong-password")
    unknown = sign_in(client, "guess-new", "wrong-password")
    known = sign_in(client, "clinician", "wrong-password")
    assert unknown.status_code == known.status_code == 200
    assert "Please enter a correct username and password" in unknown.content.decode()
    assert "Please enter a correct username and password" in known.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [reverse_lazy("login"), reverse_lazy("admin:login")])
def test_a_username_too_long_for_any_account_gets_the_normal_error(client, staff_user, url):
    response = sign_in(client, "x" * 50_001, "wrong-password", url=str(url))
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    row = AuditEvent.objects.get(action="intake.auth.login_failed")
    assert row.detail == {"username": None, "unknown_username": True}


@pytest.mark.django_db
def test_lockout_rows_keep_the_accounts_spelling_of_a_name_typed_in_another_case(
    client, staff_user
):
    lock_out(client, "STAFF")
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["staff"]


@pytest.mark.django_db
def test_lockout_message_follows_the_configured_limit_and_cool_off(client, staff_user):
    with override_settings(AXES_FAILURE_LIMIT=2, AXES_COOLOFF_TIME=dt.timedelta(minutes=1)):
        sign_in(client, "staff", "wrong-password")
        response = sign_in(client, "staff", "wrong-password")
    assert response.status_code == 429
    assert "Try again in 1 minute or ask a clinic admin." in response.content.decode()


@pytest.mark.django_db
def test_without_a_cool_off_the_lockout_message_sends_the_user_to_a_clinic_admin(
    client, staff_user
):
    with override_settings(AXES_COOLOFF_TIME=None):
        lock_out(client)
        response = sign_in(client, "staff", PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Ask a clinic admin to lift the lockout." in page
    assert "Try again" not in page


@pytest.mark.django_db
def test_admin_sign_in_is_locked_out_too(client, clinician):
    url = reverse("admin:login")
    lock_out(client, "clinician", url=url)
    response = sign_in(client, "clinician", PASSWORD, url=url)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_sign_in_and_sign_out_are_audited(client, staff_user):
    response = sign_in(client, "staff", PASSWORD)
    assert response.status_code == 302

    login = AuditEvent.objects.get(action="intake.auth.login")
    assert login.actor == staff_user
    assert login.ip == "10.0.0.1"

    client.post(reverse("logout"))
    logout = AuditEvent.objects.get(action="intake.auth.logout")
    assert logout.actor == staff_user


@pytest.mark.django_db
def test_test_client_login_still_works_with_the_lockout_backend(client, staff_user):
    assert client.login(username="staff", password=PASSWORD)
    assert not client.login(username="staff", password="wrong-password")


# ---------------------------------------------------------------------------
# Passwords re-typed by a signed-in user count toward the same lockout

RETYPED_LOCKOUT = (
    "Your password was entered wrongly too many times, so you were signed out; nothing was "
    "signed or changed. You can sign in again in 15 minutes, or ask a clinic admin."
)
NOTE = "Patient Qqqplk agreed to an ECG first."
TWO_LEFT = "2 more wrong passwords sign you out, and what you typed on this page is not kept."
ONE_LEFT = "One more wrong password signs you out, and what you typed on this page is not kept."


def signature_form(kind, user):
    """Return (url, posted data but the password, what it would store) of a signing form."""
    from intake.models import Addendum, Determination, Review
    from tests.review_data import flagged_screening, sign_review

    staff = get_user_model().objects.get_or_create(username="submitter")[0]
    screening = flagged_screening(staff, ["SUI-01"])
    if kind == "review":
        url = reverse("admin:intake_screening_review", args=[screening.pk])
        data = {
            "reviews_seen": "0",
            "ack_SUI-01": "on",
            "determination": str(Determination.objects.first().pk),
            "note": NOTE,
        }
        return url, data, lambda: Review.objects.filter(screening=screening).exists()
    review = sign_review(screening, user)
    url = reverse("admin:intake_screening_addendum", args=[screening.pk])
    data = {"review": str(review.pk), "text": NOTE, "form_token": "t" * 16}
    return url, data, lambda: Addendum.objects.filter(screening=screening).exists()


def signed_in(client, user, ip="10.0.0.1"):
    client.force_login(user)
    return client


def is_signed_in(client):
    return "_auth_user_id" in client.session


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["review", "addendum"])
def test_five_wrong_signature_passwords_lock_out_and_sign_out_with_nothing_signed(
    client, clinician, kind
):
    url, data, stored = signature_form(kind, clinician)
    signed_in(client, clinician)
    seen = AuditEvent.objects.order_by("id").last().pk
    for attempt, warning in [(1, None), (2, None), (3, TWO_LEFT), (4, ONE_LEFT)]:
        response = client.post(
            url, {**data, "password": f"guess-{attempt}"}, REMOTE_ADDR="10.0.0.1"
        )
        assert response.status_code == 200
        page = response.content.decode()
        assert "The password is not correct; nothing was signed." in page
        if warning:
            assert warning in page
        else:
            assert "sign you out" not in page
        assert is_signed_in(client)
    response = client.post(url, {**data, "password": "guess-5"}, REMOTE_ADDR="10.0.0.1")

    # Signed out and sent to sign in again, back to this form; the page says why.
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"
    assert not is_signed_in(client)
    page = client.get(response.url).content.decode()
    assert RETYPED_LOCKOUT in page
    assert not stored()
    # The same lockout as the sign-in page's: the right password is refused there now.
    assert sign_in(client, "clinician", PASSWORD).status_code == 429

    auth_rows = AuditEvent.objects.filter(pk__gt=seen, action__startswith="intake.auth.")
    rows = list(auth_rows.order_by("id"))
    retyped = {"username": "clinician", "retyped_for": "signature"}
    assert [(row.action, row.detail) for row in rows[:7]] == [
        *[("intake.auth.login_failed", retyped)] * 5,
        ("intake.auth.locked_out", retyped),
        ("intake.auth.logout", {}),
    ]
    assert {row.actor for row in rows[:7]} == {clinician}
    assert {row.ip for row in rows[:7]} == {"10.0.0.1"}
    everything = json.dumps(list(AuditEvent.objects.values("detail")))
    assert "guess-" not in everything and NOTE not in everything
    # axes keeps the posted form with a failed attempt: not the note, which is patient data.
    attempt = AccessAttempt.objects.get(username="clinician")
    assert attempt.failures_since_start == 5
    assert "Qqqplk" not in attempt.post_data + attempt.get_data


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["review", "addendum"])
def test_the_right_signature_password_before_the_limit_still_signs(client, clinician, kind):
    url, data, stored = signature_form(kind, clinician)
    signed_in(client, clinician)
    for attempt in range(4):
        client.post(url, {**data, "password": f"guess-{attempt}"}, REMOTE_ADDR="10.0.0.1")
    response = client.post(url, {**data, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302
    assert "/login/" not in response.url
    assert stored()
    assert is_signed_in(client)
    assert not AuditEvent.objects.filter(action="intake.auth.locked_out").exists()


@pytest.mark.django_db
def test_failed_sign_ins_and_wrong_signatures_count_together(client, clinician):
    url, data, stored = signature_form("review", clinician)
    for _attempt in range(3):
        sign_in(client, "clinician", "wrong-password")
    signed_in(client, clinician)
    client.post(url, {**data, "password": "guess-1"}, REMOTE_ADDR="10.0.0.1")
    assert is_signed_in(client)
    response = client.post(url, {**data, "password": "guess-2"}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302 and not is_signed_in(client)
    assert not stored()


@pytest.mark.django_db
def test_during_a_lockout_the_right_signature_signs_nothing_and_signs_out(client, clinician):
    url, data, stored = signature_form("review", clinician)
    lock_out(client, "clinician")  # from the sign-in page at this workstation
    signed_in(client, clinician)  # a session that was open before
    response = client.post(url, {**data, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not is_signed_in(client)
    assert not stored()
    last = AuditEvent.objects.filter(action__startswith="intake.auth.").order_by("-id")[:2]
    assert [row.action for row in last] == ["intake.auth.logout", "intake.auth.locked_out"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", [reverse_lazy("password_change"), reverse_lazy("admin:password_change")]
)
def test_five_wrong_current_passwords_on_the_password_change_lock_out_and_sign_out(
    client, clinician, url
):
    signed_in(client, clinician)
    data = {"new_password1": "Another-pass-2026!", "new_password2": "Another-pass-2026!"}
    for attempt, warning in [(1, None), (2, None), (3, TWO_LEFT), (4, ONE_LEFT)]:
        response = client.post(
            url, {**data, "old_password": f"guess-{attempt}"}, REMOTE_ADDR="10.0.0.1"
        )
        assert response.status_code == 200
        errors = [
            error.message for error in response.context["form"].errors.as_data()["old_password"]
        ]
        assert errors[0].startswith("Your old password was entered incorrectly")
        assert errors[1:] == ([warning] if warning else [])
    response = client.post(url, {**data, "old_password": "guess-5"}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"
    assert not is_signed_in(client)
    assert RETYPED_LOCKOUT in client.get(response.url).content.decode()
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)
    retyped = {"username": "clinician", "retyped_for": "password_change"}
    failed = AuditEvent.objects.filter(action="intake.auth.login_failed")
    assert [row.detail for row in failed] == [retyped] * 5
    assert not AuditEvent.objects.filter(action="intake.user.password_changed").exists()


@pytest.mark.django_db
def test_the_right_current_password_still_changes_it(client, clinician):
    signed_in(client, clinician)
    data = {"new_password1": "Another-pass-2026!", "new_password2": "Another-pass-2026!"}
    client.post(
        reverse("password_change"), {**data, "old_password": "guess"}, REMOTE_ADDR="10.0.0.1"
    )
    response = client.post(
        reverse("password_change"), {**data, "old_password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    clinician.refresh_from_db()
    assert clinician.check_password("Another-pass-2026!")
    assert is_signed_in(client)


# ---------------------------------------------------------------------------
# Idle timeout


@pytest.mark.django_db
def test_sessions_slide_for_fifteen_idle_minutes_and_end_with_the_browser(settings):
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


@pytest.mark.django_db
def test_session_cookie_is_a_browser_session_cookie(client, staff_user):
    response = sign_in(client, "staff", PASSWORD)
    cookie = response.cookies["sessionid"]
    assert not cookie["max-age"]
    assert not cookie["expires"]
    assert cookie["httponly"]


def session_row(client):
    return Session.objects.get(session_key=client.session.session_key)


@pytest.mark.django_db
def test_keepalive_extends_the_session(client, staff_user):
    client.force_login(staff_user)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() + dt.timedelta(seconds=30)
    )

    response = client.post(reverse("session_keepalive"))

    assert response.status_code == 204
    assert response.content == b""
    remaining = session_row(client).expire_date - timezone.now()
    assert dt.timedelta(minutes=14) < remaining <= dt.timedelta(minutes=15)


@pytest.mark.django_db
def test_keepalive_is_post_only(client, staff_user):
    client.force_login(staff_user)
    assert client.get(reverse("session_keepalive")).status_code == 405


@pytest.mark.django_db
def test_keepalive_needs_a_live_session(client, staff_user):
    response = client.post(reverse("session_keepalive"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))

    client.force_login(staff_user)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    response = client.post(reverse("session_keepalive"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_keepalive_needs_the_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(reverse("session_keepalive")).status_code == 403

    page = client.get(reverse("intake:home")).content.decode()
    token = page.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
    response = client.post(reverse("session_keepalive"), headers={"X-CSRFToken": token})
    assert response.status_code == 204


@pytest.mark.django_db
def test_signed_in_pages_configure_the_idle_warning(client, staff_user):
    client.force_login(staff_user)
    page = client.get(reverse("intake:home")).content.decode()

    assert 'data-idle-timeout="900"' in page
    assert 'data-idle-warning="120"' in page
    assert f'data-keepalive-url="{reverse("session_keepalive")}"' in page
    assert f'data-login-url="{reverse("login")}"' in page
    assert '<meta name="csrf-token" content="' in page
    assert "intake/idle.js" in page
    assert 'role="alertdialog"' in page
    assert "Stay signed in" in page


@pytest.mark.django_db
def test_sign_in_page_has_no_idle_timer(client):
    page = client.get(reverse("login")).content.decode()
    assert "intake/idle.js" not in page
    assert "data-idle-timeout" not in page
    assert "csrf-token" not in page


@pytest.mark.django_db
def test_sign_out_returns_to_the_page_given_in_next(client, staff_user):
    client.force_login(staff_user)
    target = reverse("login") + "?next=/some/draft/step/"
    response = client.post(reverse("logout"), {"next": target})
    assert response.status_code == 302
    assert response.url == target
    assert "_auth_user_id" not in client.session


# ---------------------------------------------------------------------------
# Every page needs sign-in

PUBLIC = {"login", "healthz"}


def walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern, namespace


def anonymous_urls():
    urls = []
    for route, pattern, namespace in walk(get_resolver().url_patterns):
        if route.startswith(("admin/", "static/", "^static")):
            continue
        if pattern.pattern.regex.groups or "<" in route:
            continue  # needs arguments
        if pattern.name in PUBLIC:
            continue
        name = f"{namespace}{pattern.name}" if pattern.name else None
        urls.append(reverse(name) if name else "/" + route)
    return urls


def test_url_walk_finds_the_app_pages():
    urls = anonymous_urls()
    assert reverse("intake:home") in urls
    assert reverse("session_keepalive") in urls
    assert reverse("logout") in urls


@pytest.mark.django_db
@pytest.mark.parametrize("url", anonymous_urls())
def test_every_page_except_sign_in_requires_sign_in(client, url):
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login") + "?next="), url


@pytest.mark.django_db
def test_sign_in_page_is_public(client):
    assert client.get(reverse("login")).status_code == 200


def test_health_check_is_public_and_reads_no_database(client):
    # No django_db mark: pytest-django makes any query here an error.
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert client.post(reverse("healthz")).status_code == 405


@pytest.mark.django_db
def test_password_reset_by_email_is_not_offered(client):
    assert client.get("/accounts/password_reset/").status_code == 404


# ---------------------------------------------------------------------------
# An account whose role was taken away reaches nothing with patient data

# Pages about the signed-in account itself, open to anyone signed in; none shows patient data.
ACCOUNT_PAGES = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "session_keepalive",
    "healthz",
}
# Routes written as regular expressions, and an address each one matches.
REGEX_ROUTES = {
    "admin/^(?P<app_label>intake|auth|axes)/$": "admin/intake/",
    "admin/(?P<url>.*)$": "admin/no-such-page/",
}


def every_route(values):
    """Yield (name, path) for every URL pattern, its arguments filled from ``values``."""
    for route, pattern, namespace in walk(get_resolver().url_patterns):
        name = f"{namespace}{pattern.name}" if pattern.name else route
        if route in REGEX_ROUTES:
            yield name, "/" + REGEX_ROUTES[route]
        else:
            filled = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)
            yield name, "/" + filled


@pytest.mark.django_db
def test_an_account_without_a_role_reaches_no_page_of_patient_data(client, staff_user):
    from django.contrib.contenttypes.models import ContentType

    from intake.models import Draft, Screening
    from tests.factories import make_screening

    screening = make_screening(staff_user)
    draft = Draft.objects.create(created_by=staff_user, last_step="patient")
    values = {
        "pk": screening.pk,
        "object_id": screening.pk,
        "content_type_id": ContentType.objects.get_for_model(Screening).pk,
        "draft_id": draft.pk,
        "step": "patient",
        "id": staff_user.pk,
    }
    routes = dict(every_route(values))
    assert {"intake:screening_pdf", "intake:screening_fhir", "admin:index"} <= set(routes)
    # Set to "No role" by a clinic admin, but still active: signing in works.
    staff_user.groups.clear()
    client.force_login(staff_user)
    seen = last_id()
    for name, url in routes.items():
        methods = ["get"] if name == "logout" else ["get", "post"]
        for method in methods:
            response = getattr(client, method)(url)
            body = response.content.decode(errors="replace")
            assert "Rivera" not in body and "MRN-1001" not in body, (method, url)
            if name in ACCOUNT_PAGES:
                assert response.status_code < 500, (method, url)
            elif method == "get":
                assert response.status_code == 403, (method, url, response.status_code)
            else:  # a GET-only address may say so first
                assert response.status_code in (403, 405), (method, url, response.status_code)
    assert not AuditEvent.objects.filter(
        pk__gt=seen, action__startswith="intake.screening"
    ).exists()


# ---------------------------------------------------------------------------
# Error pages


@login_not_required
def boom(request):
    raise RuntimeError("secret detail MRN-1001 that must not leak")


urlpatterns = [path("boom/", boom)]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_server_error_page_shows_no_detail(caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level("CRITICAL", logger="django.request"):
        response = client.get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "MRN-1001" not in page
    assert "Traceback" not in page
    assert "RuntimeError" not in page


@pytest.mark.django_db
def test_not_found_page_is_plain(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/no/such/page/MRN-1001/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page
    assert "MRN-1001" not in page


@pytest.mark.django_db
def test_csrf_failure_explains_itself(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post(reverse("logout"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "Form not accepted" in page
    assert "was not accepted" in page
    assert "CSRF" not in page


def test_role_backend_grants_exactly_what_djangos_model_backend_grants(make_user):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import AnonymousUser, Group, Permission

    from intake.models import Role
    from intake.security import RoleBackend

    users = [make_user(f"u-{role}", role) for role in Role.values]
    direct = make_user("direct")  # no role, one permission of its own
    direct.user_permissions.add(Permission.objects.get(codename="conduct_screening"))
    both = make_user("both", Role.CLINICIAN)  # a role plus one permission of its own
    both.user_permissions.add(Permission.objects.get(codename="conduct_screening"))
    inactive = make_user("inactive", Role.CLINIC_ADMIN)
    inactive.is_active = False
    inactive.save()
    superuser = get_user_model().objects.create_superuser("root", password=PASSWORD)
    two_roles = make_user("two-roles", Role.INTAKE_STAFF)
    two_roles.groups.add(Group.objects.get(name=Role.CLINICIAN))
    people = [*users, direct, both, two_roles, inactive, superuser, make_user("nobody")]
    User = get_user_model()
    for person in people:
        ours = RoleBackend().get_all_permissions(User.objects.get(pk=person.pk))
        theirs = ModelBackend().get_all_permissions(User.objects.get(pk=person.pk))
        assert ours == theirs, person.username
    assert RoleBackend().get_all_permissions(AnonymousUser()) == set()
    assert RoleBackend().has_perm(User.objects.get(pk=direct.pk), "intake.conduct_screening")
    assert not RoleBackend().has_perm(User.objects.get(pk=inactive.pk), "intake.conduct_screening")
    assert len(RoleBackend().get_all_permissions(User.objects.get(pk=superuser.pk))) == (
        Permission.objects.count()
    )


def test_signing_out_for_inactivity_says_why_on_the_sign_in_page(client, staff_user):
    client.force_login(staff_user)
    login = reverse("login")
    response = client.post(reverse("logout"), {"next": login, "idle": "1"}, follow=True)
    assert response.redirect_chain[-1][0] == login
    assert "You were signed out after 15 minutes without activity." in response.content.decode()
    client.force_login(staff_user)
    response = client.post(reverse("logout"), {"next": login}, follow=True)
    assert "without activity" not in response.content.decode()  # a plain sign-out


def test_the_sign_in_page_reached_after_a_timeout_says_why(client):
    response = client.get(reverse("login"), {"next": "/", "timeout": "1"})
    assert "You were signed out after 15 minutes without activity." in response.content.decode()
    assert "without activity" not in client.get(reverse("login")).content.decode()


# ---------------------------------------------------------------------------
# NUL characters in what is sent (PostgreSQL refuses them in a query)


def test_nul_characters_leave_the_address_and_forms_before_any_view():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from intake.security import NulFreeInputMiddleware

    seen = {}

    def view(request):
        seen["GET"], seen["POST"] = request.GET, request.POST
        return HttpResponse()

    middleware = NulFreeInputMiddleware(view)
    factory = RequestFactory()
    middleware(factory.post("/x/?q=a%00b&e%00=1", {"note": "line\x00two", "id": ["1\x00", "2"]}))
    assert seen["GET"].dict() == {"q": "ab", "e": "1"}
    assert seen["POST"].getlist("id") == ["1", "2"] and seen["POST"]["note"] == "linetwo"
    assert not seen["GET"]._mutable and not seen["POST"]._mutable
    # Untouched without NUL; a body that is not a form is the view's own to read.
    middleware(factory.get("/x/?q=plain"))
    assert seen["GET"].urlencode() == "q=plain"
    middleware(factory.post("/x/", '{"a": "\\u0000"}', content_type="application/json"))
    assert not seen["POST"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/intake/screening/?q=%00",
        "/admin/intake/screening/?q=a%00b&state=all",
        "/admin/autocomplete/?app_label=intake&model_name=screening&field_name=submitted_by"
        "&term=%00",
    ],
)
def test_a_nul_in_the_queues_address_is_no_server_error(client, clinician, url):
    client.force_login(clinician)
    response = client.get(url, follow=True)
    assert response.status_code in (200, 403)


@pytest.mark.django_db
def test_a_nul_in_a_posted_search_or_filter_is_no_server_error(client, clinician, clinic_admin):
    client.force_login(clinician)
    response = client.post(reverse("admin:intake_screening_search"), {"q": "a\x00b"}, follow=True)
    assert response.status_code == 200
    client.force_login(clinic_admin)
    response = client.get("/admin/intake/auditevent/?action=%00")
    assert response.status_code == 200


# ---------------------------------------------------------------------------
# An action's address opened instead of posted


@pytest.mark.django_db
def test_opening_the_sign_out_address_asks_for_the_button(client, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("logout"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<form method="post" action="{reverse("logout")}"' in html
    assert "_auth_user_id" in client.session  # still signed in
    assert not AuditEvent.objects.filter(action="intake.auth.logout").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, url",
    [
        ("clinician", "/admin/logout/"),
        ("staff_user", "/session/keepalive/"),
    ],
)
def test_an_actions_address_opened_answers_405_with_a_page_that_says_so(client, request, role, url):
    user = request.getfixturevalue(role)
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 405
    assert response["Allow"]
    html = response.content.decode()
    assert "Nothing was changed: this is done with a button" in html
    assert "Content-Security-Policy" in response.headers
    assert "_auth_user_id" in client.session
