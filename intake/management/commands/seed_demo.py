import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from intake.accounts import create_user
from intake.models import Role

DEMO_ACCOUNTS = (
    ("demo-staff", Role.INTAKE_STAFF),
    ("demo-clinician", Role.CLINICIAN),
    ("demo-admin", Role.CLINIC_ADMIN),
)


class Command(BaseCommand):
    help = (
        "Create one demo account per role if missing. Passwords come from DEMO_PASSWORD, "
        "or are generated and printed once."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        shared = os.environ.get("DEMO_PASSWORD")
        for username, role in DEMO_ACCOUNTS:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"Demo account {username} ({role.label}) already exists.")
                continue
            password = shared or secrets.token_urlsafe(12)
            create_user(
                username=username,
                role=role,
                password=password,
                validate=False,
                source="manage.py seed_demo",
            )
            shown = "(from DEMO_PASSWORD)" if shared else password
            self.stdout.write(
                self.style.SUCCESS(f"Demo account {username} ({role.label}), password: {shown}")
            )
