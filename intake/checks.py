"""System checks for what a clinic must configure before going live."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_suicide_safety_protocol(app_configs, **kwargs):
    """Warn when the clinic's suicide-safety protocol text is not configured."""
    if settings.SUICIDE_SAFETY_PROTOCOL:
        return []
    return [
        Warning(
            "CLINIC_SUICIDE_SAFETY_PROTOCOL is not set: the urgent suicide-risk banner and the "
            "PDF can only say the clinic's protocol is not entered.",
            hint="Set it to the text of the clinic's suicide-safety protocol (what staff do "
            "at once, whom they call).",
            id="intake.W001",
        )
    ]
