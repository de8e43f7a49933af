from django.db import migrations


def register_builtins(apps, schema_editor):
    """Every tenant schema starts with the built-in traits in its registry."""
    from segments.rules.vocabulary import BUILTIN_TRAITS

    TraitDefinition = apps.get_model("customers", "TraitDefinition")
    for spec in BUILTIN_TRAITS.values():
        TraitDefinition.objects.update_or_create(key=spec.key, defaults={
            "type": spec.type.value, "category": spec.category.value, "description": spec.description,
            "is_pii": spec.is_pii, "is_builtin": True})


def identities_for_existing(apps, schema_editor):
    """Customers created before identities existed are known by their external id."""
    schema_editor.execute(
        "INSERT INTO customers_customeridentity (customer_id, kind, value, created_at) "
        "SELECT id, 'user_id', external_id, now() FROM customers_customer ON CONFLICT DO NOTHING")


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_identities_and_registries")]
    operations = [
        migrations.RunPython(register_builtins, migrations.RunPython.noop),
        migrations.RunPython(identities_for_existing, migrations.RunPython.noop),
    ]
