"""Sign-in lockouts in the review panel: clinic admins see them and lift them, audited.

A lockout is an axes ``AccessAttempt`` row (username, address, browser; no
patient data); deleting it lifts the lockout. axes' own admin is replaced so
that every deletion, one at a time or by the bulk action, writes an audit row
naming who lifted it. Lockouts ended by the cool-off, a successful sign-in or
``manage.py axes_reset`` are not lifts by a person and are not audited here.
"""

import axes.admin  # registers axes' admins first, so the replacement below always wins
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from intake import audit
from intake.security import username_detail


def record_lift(request, attempt):
    """Audit that the signed-in user deleted ``attempt``, lifting any lockout it held."""
    limit = settings.AXES_FAILURE_LIMIT
    audit.record(
        action="intake.auth.lockout_lifted",
        obj=attempt,
        request=request,
        detail={
            **username_detail(attempt.username),
            "failures": attempt.failures_since_start,
            "locked_out": isinstance(limit, int) and attempt.failures_since_start >= limit,
        },
    )


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(axes.admin.AccessAttemptAdmin):
    """axes' access attempts, without the raw form data, with every deletion audited."""

    fieldsets = (
        (None, {"fields": ("username", "path_info", "failures_since_start", "expiration")}),
        (_("Meta Data"), {"fields": ("user_agent", "ip_address", "http_accept")}),
    )
    # axes' clean-up action deletes without going through delete_queryset.
    actions = []

    def delete_model(self, request, obj):
        with transaction.atomic():
            record_lift(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for attempt in queryset:
                record_lift(request, attempt)
            super().delete_queryset(request, queryset)
