import secrets

from django.db import migrations


def first_write_key(apps, schema_editor):
    """Every tenant schema starts with a write key, so tracking SDKs can be set up at once."""
    WriteKey = apps.get_model("apikeys", "WriteKey")
    if not WriteKey.objects.filter(revoked_at__isnull=True).exists():
        WriteKey.objects.create(key="wk_" + secrets.token_urlsafe(24))


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial")]
    operations = [migrations.RunPython(first_write_key, migrations.RunPython.noop)]
