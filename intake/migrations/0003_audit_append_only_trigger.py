from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION intake_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'intake_auditevent is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER intake_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON intake_auditevent
    FOR EACH ROW EXECUTE FUNCTION intake_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS intake_auditevent_no_update_delete ON intake_auditevent;
DROP FUNCTION IF EXISTS intake_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("intake", "0002_roles_and_determinations")]

    operations = [migrations.RunPython(forwards, backwards)]
