"""The three roles. Migration 0002 creates their groups and permissions; 0004 adjusts them.

0004 lets clinic admins view and delete sign-in lockouts (axes access attempts)
and keeps the audit log list to clinic admins.
"""

from intake.models import Role

ADMIN_ROLES = frozenset({Role.CLINICIAN, Role.CLINIC_ADMIN})


def user_role(user):
    """Return the user's role (the highest group that names one), or None."""
    names = {group.name for group in user.groups.all()}
    for role in (Role.CLINIC_ADMIN, Role.CLINICIAN, Role.INTAKE_STAFF):
        if role.value in names:
            return role
    return None
