import secrets

from django.db import migrations


def first_lookup_key(apps, schema_editor):
    """Every tenant schema starts with a lookup key, so its product can ask at once."""
    LookupKey = apps.get_model("apikeys", "LookupKey")
    if not LookupKey.objects.filter(revoked_at__isnull=True).exists():
        LookupKey.objects.create(key="lk_" + secrets.token_urlsafe(24))


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0007_lookup_key")]
    operations = [migrations.RunPython(first_lookup_key, migrations.RunPython.noop)]
