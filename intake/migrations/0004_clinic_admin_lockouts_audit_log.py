"""Clinic admins lift sign-in lockouts; only clinic admins read the audit log.

The lockout message tells a locked-out user to ask a clinic admin, so clinic
admins may view and delete axes' access attempts (username, address, browser;
no patient data). The audit log holds the usernames typed at failed sign-ins,
so clinicians lose its list; a screening's own history stays on its review page,
which does not use this permission.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "clinic_admin": ["axes.view_accessattempt", "axes.delete_accessattempt"],
}
REVOKES = {
    "clinician": ["intake.view_auditevent"],
}


def _permissions(apps, dotted_names):
    Permission = apps.get_model("auth", "Permission")
    for dotted in dotted_names:
        app_label, codename = dotted.split(".")
        yield Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _apply(apps, grants, revokes):
    # Permissions are created after the last migration; this one needs axes' now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for role, names in grants.items():
        for group in Group.objects.filter(name=role):
            group.permissions.add(*_permissions(apps, names))
    for role, names in revokes.items():
        for group in Group.objects.filter(name=role):
            group.permissions.remove(*_permissions(apps, names))


def update_roles(apps, schema_editor):
    _apply(apps, GRANTS, REVOKES)


def restore_roles(apps, schema_editor):
    _apply(apps, REVOKES, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0003_audit_append_only_trigger"),
        ("axes", "0010_accessattemptexpiration"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(update_roles, restore_roles)]
