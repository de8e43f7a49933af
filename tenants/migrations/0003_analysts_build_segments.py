"""Built-in analyst roles take their permissions from tenants.permissions (now with
segments.edit); the description stored at provisioning says so too."""

from django.db import migrations

OLD = "Reads segments and reports, exports data, runs the models of Insights"
NEW = "Reads reports, builds segments from them, exports data, runs the models of Insights"


def describe(new: str, old: str):
    def run(apps, schema_editor):
        apps.get_model("tenants", "Role").objects.filter(is_builtin=True, key="analyst", description=old) \
            .update(description=new)
    return run


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_roles_departments_invitations")]

    operations = [migrations.RunPython(describe(NEW, OLD), describe(OLD, NEW))]
