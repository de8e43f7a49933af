import secrets

from django.db import migrations


def first_identity_secret(apps, schema_editor):
    """Every tenant schema starts with an identity secret (verification not yet required),
    so an app can start signing userIds at once."""
    IdentitySecret = apps.get_model("apikeys", "IdentitySecret")
    if not IdentitySecret.objects.filter(revoked_at__isnull=True).exists():
        IdentitySecret.objects.create(secret="is_" + secrets.token_hex(32))


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0005_identity_secret")]
    operations = [migrations.RunPython(first_identity_secret, migrations.RunPython.noop)]
