"""Sign-in lockout, sign-in auditing, the idle-timeout keep-alive and error views.

What axes signals, and what each sign-in attempt writes to the audit log
(django-axes 8, database handler, ``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT``
off; checked in ``tests/test_security.py``):

* A wrong password below the limit: Django sends ``user_login_failed``; one
  ``intake.auth.login_failed`` row.
* The wrong password that reaches the limit: Django sends ``user_login_failed``;
  axes' receiver of it counts the failure and sends ``user_locked_out`` from
  inside it. Two events, two rows: ``intake.auth.login_failed`` then
  ``intake.auth.locked_out``.
* Any attempt during the lockout, right or wrong password: ``LockoutBackend``
  refuses it before any password is checked, Django still sends
  ``user_login_failed`` for the refusal and axes answers with ``user_locked_out``
  again. One row, ``intake.auth.locked_out``: the refusal is not a failed
  password.
* A lockout that ends by the cool-off: axes keeps the stale attempt until the
  next sign-in, sign-in failure or sign-out by anyone reaches its handler, which
  first deletes every attempt older than the cool-off. ``LockoutHandler``
  audits each lockout among them as ``intake.auth.lockout_expired`` at that
  moment, with no actor (the clock ended it, not the person whose request
  noticed) and the time the cool-off ended in ``ended_at``. Nothing signals the
  end itself, so with no sign-in traffic at all the row comes late or, if a
  clinic admin lifts the stale lockout first, not at all (the lift is audited).

A signed-in user re-types their password to sign a review or an addendum and to
change it (``recheck_password``). Each check is a sign-in attempt as above, for the
account's username from the same address: a wrong password writes the same rows
(their detail names what it was typed for, and the actor is the signed-in user) and
counts toward the same lockout, so that an unattended workstation does not let
anyone try passwords. The request that reaches the limit, or any re-typed password
during the lockout, signs the user out and shows the sign-in page with the lockout
message (``lockout_response``); nothing is signed or changed.
"""

import math
import unicodedata
from functools import cache

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, logout
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from intake import audit


class LockoutBackend(AxesStandaloneBackend):
    """Refuse sign-in while a username and address are locked out; authenticate nothing itself.

    Every sign-in over HTTP passes its request and is checked. A call without a
    request (a management command, the test client's ``login()``) has no client
    address to lock, so it is left to the next backend instead of raising.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        """Raise ``PermissionDenied`` for a locked-out request; otherwise return None."""
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            # Django catches this and sends user_login_failed for the refusal;
            # the mark tells the audit receivers that no password was checked.
            request.intake_refused_by_lockout = True
            raise


class LockoutHandler(AxesDatabaseHandler):
    """axes' database handler, auditing each lockout it deletes because its cool-off ended."""

    def clean_expired_user_attempts(self, request=None, credentials=None):
        if settings.AXES_COOLOFF_TIME is None or failure_limit() is None:
            return super().clean_expired_user_attempts(request, credentials)
        if settings.AXES_USE_ATTEMPT_EXPIRATION:
            expired = AccessAttempt.objects.filter(expiration__expires_at__lte=timezone.now())
        else:
            expired = AccessAttempt.objects.filter(
                attempt_time__lte=get_cool_off_threshold(request)
            )
        count = 0
        with transaction.atomic(using=router.db_for_write(AccessAttempt)):
            for attempt in expired.filter(failures_since_start__gte=failure_limit()):
                ended = timezone.localtime(lockout_end(attempt))
                # Deleting by key first: of two requests cleaning at once, only
                # the one that removes the row audits it.
                deleted, _rows = AccessAttempt.objects.filter(pk=attempt.pk).delete()
                if deleted:
                    count += 1
                    audit.record(
                        action="intake.auth.lockout_expired",
                        obj=attempt,
                        detail={
                            **username_detail(attempt.username),
                            "failures": attempt.failures_since_start,
                            "ended_at": ended.isoformat(timespec="seconds"),
                        },
                    )
        return count + super().clean_expired_user_attempts(request, credentials)


def failure_limit():
    """Return the number of failures that locks a username and address, or None if not fixed."""
    limit = settings.AXES_FAILURE_LIMIT
    return limit if isinstance(limit, int) and limit > 0 else None


def lockout_end(attempt):
    """Return when the lockout ``attempt`` holds ends, or None if it holds none."""
    limit = failure_limit()
    if limit is None or attempt.failures_since_start < limit:
        return None
    if settings.AXES_USE_ATTEMPT_EXPIRATION and hasattr(attempt, "expiration"):
        return attempt.expiration.expires_at
    if settings.AXES_COOLOFF_TIME is None:
        return None  # locked until a clinic admin lifts it
    # The cool-off runs from the failure that locked: tries during it do not
    # move attempt_time (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is off).
    return attempt.attempt_time + settings.AXES_COOLOFF_TIME


def lockouts_in_force_q(now):
    """Return a ``Q`` over ``AccessAttempt`` for the rows holding a lockout at ``now``.

    The same rule as ``lockout_end``, for filtering in the database.
    """
    limit = failure_limit()
    if limit is None:
        return Q(pk__in=[])
    if settings.AXES_COOLOFF_TIME is None:
        cooling = Q()  # locked until a clinic admin lifts it
    else:
        cooling = Q(attempt_time__gt=now - settings.AXES_COOLOFF_TIME)
    if settings.AXES_USE_ATTEMPT_EXPIRATION:
        cooling = Q(expiration__expires_at__gt=now) | (Q(expiration__isnull=True) & cooling)
    return Q(failures_since_start__gte=limit) & cooling


class RoleBackend(ModelBackend):
    """Django's model backend, loading a user's permissions in one plain query.

    Every page checks a permission. ``ModelBackend`` runs two joined ORM
    queries for it; one ORM query for both still cost most of a millisecond,
    nearly all of it building the SQL, so the query is written out once
    (``permissions_sql``, table names from the models). The answers are the
    same as ``ModelBackend``'s (``tests/test_security.py`` compares them):
    superusers have every permission, inactive users none, and the set is
    cached on the user object for the request.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                rows = Permission.objects.values_list("content_type__app_label", "codename")
            else:
                with connections[router.db_for_read(Permission)].cursor() as cursor:
                    cursor.execute(permissions_sql(), [user_obj.pk, user_obj.pk])
                    rows = cursor.fetchall()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache


@cache
def permissions_sql():
    """Return the query of a user's permissions, their own and their groups' (two parameters)."""
    user_model = get_user_model()
    user_permissions = user_model._meta.get_field("user_permissions").remote_field.through
    user_groups = user_model._meta.get_field("groups").remote_field.through
    group_permissions = Group._meta.get_field("permissions").remote_field.through
    return (
        f"SELECT ct.app_label, p.codename FROM {Permission._meta.db_table} p"
        f" JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id"
        f" WHERE p.id IN (SELECT permission_id FROM {user_permissions._meta.db_table}"
        " WHERE user_id = %s)"
        " OR p.id IN (SELECT gp.permission_id"
        f" FROM {group_permissions._meta.db_table} gp"
        f" JOIN {user_groups._meta.db_table} ug ON ug.group_id = gp.group_id"
        " WHERE ug.user_id = %s)"
    )


def cool_off_minutes():
    """Return the lockout cool-off in whole minutes, rounded up."""
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message():
    """Return the sentence the sign-in page shows to a locked-out user."""
    if settings.AXES_COOLOFF_TIME is None:
        return _("Too many failed sign-in attempts. Ask a clinic admin to lift the lockout.")
    minutes = cool_off_minutes()
    return ngettext(
        "Too many failed sign-in attempts. Try again in %(minutes)d minute or ask a clinic admin.",
        "Too many failed sign-in attempts. Try again in %(minutes)d minutes or ask a clinic admin.",
        minutes,
    ) % {"minutes": minutes}


def retyped_lockout_message():
    """Return what the sign-in page says to a user signed out for re-typing a wrong password."""
    text = _(
        "Your password was entered wrongly too many times, so you were signed out; nothing "
        "was signed or changed."
    )
    if settings.AXES_COOLOFF_TIME is None:
        return text + " " + _("Ask a clinic admin to lift the lockout.")
    minutes = cool_off_minutes()
    return (
        text
        + " "
        + ngettext(
            "You can sign in again in %(minutes)d minute, or ask a clinic admin.",
            "You can sign in again in %(minutes)d minutes, or ask a clinic admin.",
            minutes,
        )
        % {"minutes": minutes}
    )


def lockout_response(request, original_response=None, credentials=None):
    """Answer a locked-out request (axes' ``AXES_LOCKOUT_CALLABLE``).

    A sign-in gets the sign-in page with the lockout message. A password re-typed by
    a signed-in user (``recheck_password``) signs them out, and they are sent to the
    sign-in page, which says why, and back to the page they were on once signed in.
    """
    if getattr(request, "intake_password_recheck", None):
        logout(request)
        messages.error(request, retyped_lockout_message())
        return redirect_to_login(request.path, reverse("login"))
    redirect_to = request.POST.get("next") or request.GET.get("next") or ""
    context = {
        "form": AuthenticationForm(request),
        "lockout_message": lockout_message(),
        "next": redirect_to,
    }
    return render(
        request,
        "registration/login.html",
        context,
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


def account_username(typed):
    """Return the username of the account ``typed`` names, ignoring case, or None.

    Audit rows keep a typed username only when it is an account's: anything else
    may be a password typed into the wrong box. The exact spelling wins when
    accounts differ only in case.
    """
    if not typed:
        return None
    field = get_user_model().USERNAME_FIELD
    if len(str(typed)) > get_user_model()._meta.get_field(field).max_length:
        # No account has so long a name; the database need not be asked (SQLite refuses
        # a LIKE pattern of 50,000 characters).
        return None
    names = list(
        get_user_model()
        ._default_manager.filter(**{f"{field}__iexact": str(typed)})
        .values_list(field, flat=True)[:10]
    )
    if str(typed) in names:
        return str(typed)
    return names[0] if len(names) == 1 else None


# What axes records instead of a typed name that is no account's, followed by a
# short keyed digest of that name. Django's username validator allows no spaces or
# brackets, so no account can have it.
NO_SUCH_ACCOUNT = "(no such account)"


def no_such_account_key(typed):
    """Return the key axes counts failures under for ``typed``, a name that is no account's.

    Each such name counts on its own, as an account's does: a shared count told an
    account's name apart from others once it ran out (the others were refused as
    locked out, the account's still answered "wrong password"). The digest is keyed
    and cut to 32 bits, so the row does not keep the text (which may be a password
    typed into the wrong box), and names differing only in case, width or spaces
    around them count together, as accounts' names do.
    """
    name = unicodedata.normalize("NFKC", str(typed or "")).strip().casefold()
    digest = salted_hmac("intake.security.lockout", name, algorithm="sha256").hexdigest()[:8]
    return f"{NO_SUCH_ACCOUNT[:-1]} {digest})"


def lockout_username(request, credentials=None):
    """Return the username axes counts failures under: an account's, or a no-account key.

    axes keeps this in its attempt rows, which clinic admins read under
    "Sign-in lockouts": text that names no account (a patient's name typed in
    the wrong box, a password) is never kept (see ``no_such_account_key``).
    """
    if credentials is not None:
        typed = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        typed = getattr(request, "POST", {}).get(settings.AXES_USERNAME_FORM_FIELD)
    return account_username(typed) or no_such_account_key(typed)


def username_detail(typed):
    """Return audit detail naming the account tried, never text that names no account."""
    username = account_username(typed)
    if username is None:
        return {"username": None, "unknown_username": True}
    return {"username": username}


@receiver(user_logged_in, dispatch_uid="intake.security.audit_login")
def audit_login(sender, request, user, **kwargs):
    """Audit a successful sign-in."""
    audit.record(action="intake.auth.login", actor=user, request=request)


@receiver(user_logged_out, dispatch_uid="intake.security.audit_logout")
def audit_logout(sender, request, user, **kwargs):
    """Audit a sign-out (``user`` is None when the session had already ended)."""
    if user is None:
        return
    audit.record(action="intake.auth.logout", actor=user, request=request)


def attempt_detail(request, typed_username, purpose=None):
    """Return the audit detail of a sign-in attempt: the account, and a re-typed password's use."""
    detail = username_detail(typed_username)
    purpose = purpose or getattr(request, "intake_password_recheck", None)
    return {**detail, "retyped_for": purpose} if purpose else detail


def record_login_failed(request, typed_username, purpose=None):
    """Audit one failed sign-in, once per request."""
    if request is not None:
        request.intake_login_failed_audited = True
    audit.record(
        action="intake.auth.login_failed",
        request=request,
        detail=attempt_detail(request, typed_username, purpose),
    )


@receiver(user_login_failed, dispatch_uid="intake.security.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    """Audit a failed sign-in with the account tried; Django already hides the password.

    An attempt the lockout refused checked no password: ``audit_locked_out``
    audits it. The failure that trips the lockout may already be audited, as
    axes' receiver runs first and ``audit_locked_out`` writes it in order.
    """
    if getattr(request, "intake_refused_by_lockout", False):
        return
    if getattr(request, "intake_login_failed_audited", False):
        return
    record_login_failed(request, (credentials or {}).get("username"))


@receiver(user_locked_out, dispatch_uid="intake.security.audit_locked_out")
def audit_locked_out(sender, request, username, ip_address, **kwargs):
    """Audit a lockout: the failure that starts it, or an attempt refused during it."""
    refused = getattr(request, "intake_refused_by_lockout", False)
    if not refused and not getattr(request, "intake_login_failed_audited", False):
        # The failed password that reached the limit comes first in the log.
        record_login_failed(request, username)
    audit.record(
        action="intake.auth.locked_out",
        request=request,
        detail=attempt_detail(request, username),
    )


# What a signed-in user re-types their password for (``recheck_password``), as audited.
SIGNATURE = "signature"
PASSWORD_CHANGE = "password_change"


def recheck_password(request, user, password, *, purpose: str) -> bool:
    """Return whether ``password`` is signed-in ``user``'s, checked as a sign-in attempt.

    ``authenticate`` runs every backend, so the lockout refuses a locked-out
    username and address before any password is checked, and a wrong password is
    audited and counted by axes as on the sign-in page (see the module docstring).
    ``purpose`` (``SIGNATURE``, ``PASSWORD_CHANGE``) goes into the audit rows. When
    this check reaches the lockout, or meets one, ``locked_out(request)`` is true and
    the response becomes ``lockout_response``'s, which signs the user out.

    axes keeps the posted form with a failed attempt; here it sees none, since the
    form around a signature holds a review note or an addendum: patient data.
    """
    if request is None:
        # Called outside a request (a script, a test): no address to count against.
        if user.check_password(password):
            return True
        record_login_failed(None, user.get_username(), purpose)
        return False
    kept = request.GET, request.POST
    request.GET, request.POST = QueryDict(), QueryDict()
    request.intake_password_recheck = purpose
    try:
        signed = authenticate(request, username=user.get_username(), password=password)
    finally:
        request.GET, request.POST = kept
    return signed is not None and signed.pk == user.pk


# From this many wrong passwords before the lockout, a refused re-typed password warns.
WARN_WHEN_LEFT = 2


def sign_out_warning(request) -> str:
    """Return the warning for a wrong re-typed password close to the lockout, or ""."""
    limit = failure_limit()
    failures = getattr(request, "axes_failures_since_start", None)
    if limit is None or failures is None or not 0 < limit - failures <= WARN_WHEN_LEFT:
        return ""
    left = limit - failures
    return ngettext(
        "One more wrong password signs you out, and what you typed on this page is not kept.",
        "%(count)d more wrong passwords sign you out, and what you typed on this page is not kept.",
        left,
    ) % {"count": left}


def locked_out(request) -> bool:
    """Return whether axes refused or locked out a sign-in attempt made in ``request``."""
    return bool(getattr(request, "axes_locked_out", False))


class NoStoreMiddleware:
    """Tell browsers and proxies to keep no copy of any page the app draws.

    Pages show patient data and a shared workstation's browser cache outlives the
    session. A response that set its own caching (static files are served
    before this middleware) keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response


def _without_nul(data):
    """Return QueryDict ``data`` without NUL characters, or None if it has none."""
    if not any("\x00" in key or any("\x00" in v for v in values) for key, values in data.lists()):
        return None
    clean = QueryDict(mutable=True, encoding=data.encoding)
    for key, values in data.lists():
        clean.setlist(key.replace("\x00", ""), [value.replace("\x00", "") for value in values])
    clean._mutable = False
    return clean


class NulFreeInputMiddleware:
    """Take NUL characters out of every submitted name and value, in the address or a form.

    No text the app keeps or looks up means anything with one, and PostgreSQL
    refuses them in a query: a search, filter or id with one reached the database
    as a server error. (The wizard removed them from answers already.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (clean := _without_nul(request.GET)) is not None:
            request.GET = clean
        if (
            request.method == "POST"
            and request.content_type in FORM_CONTENT_TYPES
            and (clean := _without_nul(request.POST)) is not None
        ):
            request.POST = clean
        return self.get_response(request)


FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class MethodNotAllowedPageMiddleware:
    """Draw Django's blank 405 (an action's address opened, not posted) as a page that says so."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or response.content:
            return response
        page = render(request, "405.html", status=405)
        page["Allow"] = response.get("Allow", "")
        return page


@never_cache
@require_POST
def keepalive(request):
    """Extend the signed-in session; the session middleware saves it on every request."""
    return HttpResponse(status=204)


def idle_sign_out_message(*, draft_saved):
    """Return what the sign-in page says after the idle timeout signed someone out."""
    minutes = max(1, round(settings.SESSION_COOKIE_AGE / 60))
    text = ngettext(
        "You were signed out after %(minutes)d minute without activity.",
        "You were signed out after %(minutes)d minutes without activity.",
        minutes,
    ) % {"minutes": minutes}
    if draft_saved:
        text += " " + _("Your draft was saved; sign in to continue where you left off.")
    return text


def idle_timeout(request):
    """Expose the idle-timeout settings to templates (context processor)."""
    return {
        "idle_timeout_seconds": settings.SESSION_COOKIE_AGE,
        "idle_warning_seconds": settings.IDLE_WARNING_SECONDS,
    }


def csrf_failure(request, reason=""):
    """Explain a refused form post without technical detail."""
    return render(
        request,
        "403_csrf.html",
        {"message": _("This form was open too long or was sent twice, so it was not accepted.")},
        status=403,
    )
