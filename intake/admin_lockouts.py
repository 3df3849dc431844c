"""Sign-in lockouts in the review panel: clinic admins see them and lift them, audited.

A lockout is an axes ``AccessAttempt`` row (username, address, browser; no
patient data); deleting it lifts the lockout. axes' own admin is replaced so
that every deletion, one at a time or by the bulk action, writes an audit row
naming who lifted it, and so that its pages speak of lifting a lockout (the
person can sign in again), not of deleting records. A lockout ended by its
cool-off is audited when axes clears it (``intake.security.LockoutHandler``);
one ended by a successful sign-in cannot exist (the lockout refuses it) and
``manage.py axes_reset`` is not a lift by a person, so neither is audited here.

Every time on these pages is the clinic's (``TIME_ZONE``). The model's own
title, ``AccessAttempt.__str__``, prints the stored UTC time; Django's admin
shows it as the page subtitle, in breadcrumbs, on the delete confirmation, in
the success message, in the checkbox labels and in "Recent actions". Rather
than patch axes' model for the whole process, this admin hands those places
the attempt wrapped in ``LocalTitle``.
"""

import axes.admin  # registers axes' admins first, so the replacement below always wins
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from intake import audit
from intake.admin_actions import CheckedSelectionMixin
from intake.security import failure_limit, lockout_end, lockouts_in_force_q, username_detail


def local_time(value):
    """Return ``value`` as the clinic's local date and time, formatted for display."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def attempt_title(attempt):
    """Return the title of ``attempt`` with its time in the clinic's time zone."""
    return _("Attempted access: %(time)s") % {"time": local_time(attempt.attempt_time)}


def is_locked_now(attempt):
    """Return whether ``attempt`` holds a lockout whose cool-off has not ended."""
    limit = failure_limit()
    if limit is None or attempt.failures_since_start < limit:
        return False
    ends = lockout_end(attempt)
    return ends is None or ends > timezone.now()


class LocalTitle:
    """An access attempt as a page's context shows it: titled in local time, otherwise itself."""

    def __init__(self, attempt):
        self.attempt = attempt

    def __getattr__(self, name):
        if name == "attempt":  # not set yet, e.g. while being copied
            raise AttributeError(name)
        return getattr(self.attempt, name)

    def __str__(self):
        return attempt_title(self.attempt)


def lifted_message(attempts):
    """Return the success message for lifting ``attempts``: who can sign in again."""
    names = list(dict.fromkeys(attempt.username for attempt in attempts))
    return ngettext(
        "Lockout lifted: %(names)s can sign in again.",
        "%(count)d lockouts lifted: %(names)s can sign in again.",
        len(attempts),
    ) % {"count": len(attempts), "names": ", ".join(names)}


def record_lift(request, attempt):
    """Audit that the signed-in user deleted ``attempt``, lifting any lockout it held."""
    audit.record(
        action="intake.auth.lockout_lifted",
        obj=attempt,
        request=request,
        detail={
            **username_detail(attempt.username),
            "failures": attempt.failures_since_start,
            "locked_out": is_locked_now(attempt),
        },
    )


class LockoutFilter(admin.SimpleListFilter):
    """Which rows hold a lockout now; axes' own filter counts ones whose cool-off has ended."""

    title = gettext_lazy("Lockout")
    parameter_name = "lockout"

    def lookups(self, request, model_admin):
        return (
            ("now", _("Locked out now")),
            ("ended", _("Lockout ended")),
            ("none", _("Not locked out")),
        )

    def queryset(self, request, queryset):
        limit = failure_limit()
        if self.value() is None or limit is None:
            return queryset
        in_force = lockouts_in_force_q(timezone.now())
        if self.value() == "now":
            return queryset.filter(in_force)
        if self.value() == "ended":
            return queryset.filter(failures_since_start__gte=limit).exclude(in_force)
        if self.value() == "none":
            return queryset.filter(failures_since_start__lt=limit)
        return queryset


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(CheckedSelectionMixin, axes.admin.AccessAttemptAdmin):
    """axes' access attempts, without the raw form data, in local time, every deletion audited."""

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "username",
                    "attempt_time",
                    "failures_since_start",
                    "status",
                    "path_info",
                )
            },
        ),
        (gettext_lazy("Meta Data"), {"fields": ("user_agent", "ip_address", "http_accept")}),
    )
    readonly_fields = [*axes.admin.AccessAttemptAdmin.readonly_fields, "status"]
    list_filter = [
        LockoutFilter if f is axes.admin.IsLockedOutFilter else f
        for f in axes.admin.AccessAttemptAdmin.list_filter
    ]
    # axes' clean-up action deletes without going through delete_queryset; Django's
    # "Delete selected" is replaced by lift_lockouts (see get_actions).
    actions = ["lift_lockouts"]

    @admin.display(description=gettext_lazy("Status"))
    def status(self, attempt):
        limit = failure_limit()
        if limit is not None and attempt.failures_since_start < limit:
            left = limit - attempt.failures_since_start
            return ngettext("%(count)d attempt left", "%(count)d attempts left", left) % {
                "count": left
            }
        ends = lockout_end(attempt)
        if ends is None:
            return _("Locked out")
        if ends <= timezone.now():
            return _("Lockout ended %(time)s") % {"time": local_time(ends)}
        return _("Locked out until %(time)s") % {"time": local_time(ends)}

    def action_checkbox(self, obj):
        return super().action_checkbox(LocalTitle(obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(original=LocalTitle(obj), subtitle=attempt_title(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def render_delete_form(self, request, context):
        context["object"] = LocalTitle(context["object"])
        context["title"] = _("Lift lockout")
        return super().render_delete_form(request, context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(permissions=["delete"], description=gettext_lazy("Lift the selected lockouts"))
    def lift_lockouts(self, request, queryset):
        """Django's "Delete selected", worded as what it does: lifting lockouts, audited."""
        if not request.POST.get("post"):
            # The confirmation page, Django's own in the lockout's words (see its template).
            response = delete_selected(self, request, queryset)
            response.context_data["title"] = _("Lift lockouts")
            return response
        _objs, _count, perms_needed, protected = self.get_deleted_objects(queryset, request)
        if perms_needed or protected:
            raise PermissionDenied
        attempts = list(queryset)
        if attempts:
            self.log_deletions(request, queryset)
            self.delete_queryset(request, queryset)
            self.message_user(request, lifted_message(attempts), messages.SUCCESS)
        return None  # the list again

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            shown = LocalTitle(response.context_data["object"])
            response.context_data["object"] = shown
            response.context_data["title"] = _("Change history: %s") % shown
        return response

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Django lists each attempt deleted in the order given, each followed
        # by a list of what goes with it, if anything.
        titles = iter(objs)
        shown = []
        for item in to_delete:
            if isinstance(item, list):
                shown.append(item)
                continue
            attempt = next(titles)
            shown.append(
                format_html(
                    '{}: <a href="{}">{}</a>',
                    capfirst(self.opts.verbose_name),
                    self.change_url(attempt),
                    attempt_title(attempt),
                )
            )
        return shown, model_count, perms_needed, protected

    def change_url(self, attempt):
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[quote(attempt.pk)],
        )

    def log_deletions(self, request, queryset):
        return super().log_deletions(request, [LocalTitle(attempt) for attempt in queryset])

    def delete_model(self, request, obj):
        with transaction.atomic():
            record_lift(request, obj)
            super().delete_model(request, obj)
        request.intake_lifted = obj

    def response_delete(self, request, obj_display, obj_id):
        """Say who can sign in again, and show the lockouts (Django said "deleted")."""
        lifted = getattr(request, "intake_lifted", None)
        if lifted is None or not self.has_view_permission(request):
            return super().response_delete(request, obj_display, obj_id)
        self.message_user(request, lifted_message([lifted]), messages.SUCCESS)
        changelist = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        preserved = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}
        return HttpResponseRedirect(add_preserved_filters(preserved, changelist))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for attempt in queryset:
                record_lift(request, attempt)
            super().delete_queryset(request, queryset)
