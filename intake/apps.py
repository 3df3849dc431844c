from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = _("Intake screening")

    def ready(self):
        # Register the deploy checks and connect the sign-in audit receivers.
        from intake import checks, security  # noqa: F401


class SignInLockoutsConfig(AxesAppConfig):
    """django-axes, titled for the clinic admins who lift lockouts in the review panel."""

    verbose_name = _("Sign-in lockouts")
