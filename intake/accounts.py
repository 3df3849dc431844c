"""Create staff accounts with a role; keep a clinic admin; audit password changes."""

from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from intake import audit, security
from intake.models import Role
from intake.roles import ADMIN_ROLES
from intake.security import idle_sign_out_message


class AccountError(Exception):
    """Raised when an account cannot be created as asked."""


@transaction.atomic
def create_user(*, username: str, role, password: str, actor=None, validate=True, source: str = ""):
    """Create user ``username`` in group ``role``; admin roles get admin-site access.

    ``source`` names where an account made without a signed-in ``actor`` came
    from (say, ``manage.py create_user``), so its audit row is not anonymous.
    """
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise AccountError(f"User {username!r} already exists.")
    user = User(username=username, is_staff=role in ADMIN_ROLES)
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.add(Group.objects.get(name=role))
    detail = {"role": str(role), **({"source": source} if source else {})}
    audit.record(action="intake.user.created", actor=actor, obj=user, detail=detail)
    return user


# Refused account changes and deletions that would leave the clinic without a clinic admin.
LAST_CLINIC_ADMIN = _(
    "%(username)s is the only active clinic admin: without one, nobody could manage "
    "accounts, thresholds or sign-in lockouts. Make another account an active clinic admin "
    "first."
)


def active_clinic_admins():
    """Return the active accounts with the clinic admin role.

    A superuser counts only with the role and active, like anyone else: a
    superuser account is the deployment's break-glass account, not one the
    clinic signs in with day to day, so it never stands in for a clinic admin.
    """
    return get_user_model().objects.filter(is_active=True, groups__name=Role.CLINIC_ADMIN)


def leaves_no_clinic_admin(user_ids):
    """Return whether taking the accounts ``user_ids`` out of the clinic admins leaves none.

    False when none of them is an active clinic admin now (a clinic with no
    clinic admin yet can still edit its other accounts). Call it in the
    transaction that saves the change: it locks the clinic admin group's row,
    so two admins demoting each other at once are checked one after the other
    on PostgreSQL (SQLite writes one transaction at a time anyway).
    """
    ids = list(user_ids)
    with transaction.atomic():  # a savepoint inside the caller's transaction, which keeps the lock
        Group.objects.select_for_update().filter(name=Role.CLINIC_ADMIN).first()
        admins = active_clinic_admins()
        return admins.filter(pk__in=ids).exists() and not admins.exclude(pk__in=ids).exists()


class CountedOldPasswordMixin:
    """A password change form whose current password is checked as a sign-in attempt.

    Each wrong one counts toward the sign-in lockout and is audited
    (``security.recheck_password``); at the lockout the user is signed out.
    """

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if not security.recheck_password(
            self.request, self.user, old_password, purpose=security.PASSWORD_CHANGE
        ):
            errors = [
                ValidationError(
                    self.error_messages["password_incorrect"], code="password_incorrect"
                )
            ]
            if warning := security.sign_out_warning(self.request):
                errors.append(ValidationError(warning, code="sign_out_warning"))
            raise ValidationError(errors)
        return old_password


class PasswordChangeForm(CountedOldPasswordMixin, auth_forms.PasswordChangeForm):
    """Django's form changing the signed-in user's own password, its old password counted."""


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's own password change, audited (the password itself never is), in the app's pages.

    Its form (``form_class``) checks the current password as a sign-in attempt.
    """

    template_name = "intake/password_change_form.html"
    form_class = PasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record(
            action="intake.user.password_changed",
            obj=form.user,
            request=self.request,
            detail={"by": "self"},
        )
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    """Django's "password changed" page, in the app's pages (the admin has its own)."""

    template_name = "intake/password_change_done.html"


class LogoutView(auth_views.LogoutView):
    """Django's sign-out; after the idle timeout (idle.js posts ``idle=1``) it says why.

    Its address opened (a bookmark, a typed address) asks for the button instead of
    a blank "method not allowed": signing out stays a POST.
    """

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        if request.POST.get("idle") == "1":
            messages.info(request, idle_sign_out_message(draft_saved=False))
        return response


class LoginView(auth_views.LoginView):
    """Django's sign-in; reached from a page the idle timeout closed, it says why."""

    def get(self, request, *args, **kwargs):
        if request.GET.get("timeout") == "1":
            messages.info(request, idle_sign_out_message(draft_saved=False))
        return super().get(request, *args, **kwargs)
