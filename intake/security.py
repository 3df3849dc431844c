"""Sign-in lockout, sign-in auditing, the idle-timeout keep-alive and error views."""

import math
from functools import cache

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router
from django.dispatch import receiver
from django.http import HttpResponse
from django.shortcuts import render
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
        return super().authenticate(request, username=username, password=password, **kwargs)


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
    minutes = cool_off_minutes()
    return ngettext(
        "Too many failed sign-in attempts. Try again in %(minutes)d minute or ask a clinic admin.",
        "Too many failed sign-in attempts. Try again in %(minutes)d minutes or ask a clinic admin.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None):
    """Render the sign-in page with the lockout message (axes' ``AXES_LOCKOUT_CALLABLE``)."""
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
    names = list(
        get_user_model()
        ._default_manager.filter(**{f"{field}__iexact": str(typed)})
        .values_list(field, flat=True)[:10]
    )
    if str(typed) in names:
        return str(typed)
    return names[0] if len(names) == 1 else None


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


@receiver(user_login_failed, dispatch_uid="intake.security.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    """Audit a failed sign-in with the account tried; Django already hides the password."""
    audit.record(
        action="intake.auth.login_failed",
        request=request,
        detail=username_detail((credentials or {}).get("username")),
    )


@receiver(user_locked_out, dispatch_uid="intake.security.audit_locked_out")
def audit_locked_out(sender, request, username, ip_address, **kwargs):
    """Audit a sign-in refused or blocked by the lockout."""
    audit.record(
        action="intake.auth.locked_out",
        request=request,
        detail=username_detail(username),
    )


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
