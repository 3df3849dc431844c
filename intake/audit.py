"""Write append-only audit events for every read and change of patient data."""

from django.utils.translation import gettext_lazy as _

from intake.models import AuditEvent

# What each action code means, for the people who read the log. The codes stay
# the stored, searchable form; these are only their display.
ACTION_LABELS = {
    "intake.auth.login": _("Signed in"),
    "intake.auth.logout": _("Signed out"),
    "intake.auth.login_failed": _("Sign-in failed"),
    "intake.auth.locked_out": _("Sign-in locked out"),
    "intake.auth.lockout_lifted": _("Sign-in lockout lifted"),
    "intake.auth.lockout_expired": _("Sign-in lockout ended (cool-off)"),
    "intake.home.viewed": _("Home page viewed"),
    "intake.draft.created": _("Draft started"),
    "intake.draft.viewed": _("Draft viewed"),
    "intake.draft.saved": _("Draft saved"),
    "intake.draft.purged": _("Old draft purged"),
    "intake.screening.submitted": _("Screening submitted"),
    "intake.screening.listed": _("Review queue viewed"),
    "intake.screening.viewed": _("Screening viewed"),
    "intake.screening.pdf_downloaded": _("PDF summary downloaded"),
    "intake.screening.fhir_downloaded": _("Answers for the EHR downloaded (FHIR JSON)"),
    "intake.screening.exported": _("Screenings exported"),
    "intake.screening.claimed": _("Claimed for review"),
    "intake.screening.released": _("Released to the queue"),
    "intake.screening.unlocked": _("Unlocked (signature voided)"),
    "intake.review.signed": _("Review signed"),
    "intake.addendum.signed": _("Addendum signed"),
    "intake.thresholds.changed": _("Thresholds changed"),
    "intake.determination.added": _("Determination option added"),
    "intake.determination.changed": _("Determination option changed"),
    "intake.user.created": _("Account created"),
    "intake.user.changed": _("Account changed"),
    "intake.user.password_changed": _("Password changed"),
    "intake.integrity.checked": _("Integrity checked"),
}


def action_label(action):
    """Return the display label of an action code (the code itself if it has none)."""
    return ACTION_LABELS.get(action, action)


def client_ip(request):
    """Return the client address Django saw, or None outside a request."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(*, action, actor=None, obj=None, request=None, detail=None):
    """Append one audit event; ``action`` is dotted, e.g. ``intake.screening.viewed``.

    ``detail`` must hold identifiers and small facts only, never answer text.
    """
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_username=actor.get_username() if actor is not None and actor.is_authenticated else "",
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        ip=client_ip(request),
        detail=detail or {},
    )
