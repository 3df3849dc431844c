from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = _("Intake screening")

    def ready(self):
        # Connect the sign-in audit receivers.
        from intake import security  # noqa: F401
