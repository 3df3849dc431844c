from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "intake_staff": ["intake.conduct_screening"],
    "clinician": [
        "intake.conduct_screening",
        "intake.view_screening",
        "intake.review_screening",
        "intake.view_flag",
        "intake.view_review",
        "intake.add_review",
        "intake.view_addendum",
        "intake.add_addendum",
        "intake.view_determination",
        "intake.view_summarydocument",
        "intake.view_auditevent",
        "intake.view_thresholdset",
    ],
}
ROLE_PERMISSIONS["clinic_admin"] = ROLE_PERMISSIONS["clinician"] + [
    "intake.unlock_screening",
    "intake.export_screening",
    "intake.add_thresholdset",
    "intake.change_thresholdset",
    "intake.add_determination",
    "intake.change_determination",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
]

DETERMINATIONS = [
    "Proceed to prescriber consultation",
    "More information needed",
    "Not appropriate at this time",
    "Referred elsewhere",
]


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    Determination = apps.get_model("intake", "Determination")
    for position, label in enumerate(DETERMINATIONS):
        Determination.objects.get_or_create(label=label, defaults={"position": position})


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
