"""Write append-only audit events for every read and change of patient data."""

from intake.models import AuditEvent


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
