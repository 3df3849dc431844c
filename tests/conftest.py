import contextlib
import importlib
import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from intake.models import AuditEvent, Role
from intake.roles import ADMIN_ROLES

PASSWORD = "correct-horse-battery-staple"


def last_id():
    """Return the newest audit row's key (0 if none): rows after it are a step's rows.

    Not the row count: PostgreSQL does not reuse the keys of rows that earlier tests
    rolled back, so keys run ahead of the count there.
    """
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def restore_migration_rows():
    """Recreate the rows data migrations made (role groups, determinations) if they are gone."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    if not Group.objects.filter(name=Role.CLINICIAN).exists():
        migration = importlib.import_module("intake.migrations.0002_roles_and_determinations")
        migration.create_roles(apps, None)
        roles = importlib.import_module("intake.migrations.0004_clinic_admin_lockouts_audit_log")
        roles.update_roles(apps, None)


@pytest.fixture(autouse=True)
def _restore_rows_after_flush(request, django_db_blocker):
    """Give every database test the migration rows that a transactional test's flush removed."""
    uses_db = request.node.get_closest_marker("django_db") or (
        {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    )
    if uses_db:
        request.getfixturevalue("django_db_setup")
        with django_db_blocker.unblock():
            restore_migration_rows()


@pytest.fixture
def make_user(db):
    """Return a factory for users with a role."""

    def make(username, role=None):
        user = get_user_model().objects.create_user(
            username=username, password=PASSWORD, is_staff=role in ADMIN_ROLES
        )
        if role is not None:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def staff_user(make_user):
    return make_user("staff", Role.INTAKE_STAFF)


@pytest.fixture
def clinician(make_user):
    return make_user("clinician", Role.CLINICIAN)


@pytest.fixture
def clinic_admin(make_user):
    return make_user("clinicadmin", Role.CLINIC_ADMIN)


def pytest_unconfigure(config):
    """Remove the SQLite test database's WAL files (Django deletes only the database file)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = database.get("TEST", {}).get("NAME")
    if name and database["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{name}{suffix}")
