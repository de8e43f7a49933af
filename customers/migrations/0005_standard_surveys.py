from django.db import migrations


def standard_surveys(apps, schema_editor):
    Survey = apps.get_model("customers", "Survey")
    Survey.objects.get_or_create(key="nps", defaults={"kind": "nps", "name": "Net Promoter Score"})
    Survey.objects.get_or_create(key="csat", defaults={"kind": "csat", "name": "Customer satisfaction"})


class Migration(migrations.Migration):
    dependencies = [("customers", "0004_surveys_and_consent")]
    operations = [migrations.RunPython(standard_surveys, migrations.RunPython.noop)]
