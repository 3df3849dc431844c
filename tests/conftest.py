import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from intake.models import Role
from intake.roles import ADMIN_ROLES

PASSWORD = "correct-horse-battery-staple"


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
