"""The three roles. Their groups and permissions are created by migration 0002."""

from intake.models import Role

ADMIN_ROLES = frozenset({Role.CLINICIAN, Role.CLINIC_ADMIN})


def user_role(user):
    """Return the user's role (the highest group that names one), or None."""
    names = {group.name for group in user.groups.all()}
    for role in (Role.CLINIC_ADMIN, Role.CLINICIAN, Role.INTAKE_STAFF):
        if role.value in names:
            return role
    return None
