"""Create staff accounts with a role; audit password changes."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.shortcuts import render

from intake import audit
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


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's own password change, audited (the password itself never is), in the app's pages."""

    template_name = "intake/password_change_form.html"

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
