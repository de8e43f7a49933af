"""Tenant schemas are copies of a migrated template (tenants/template.py): a copy is the
same, catalog entry for catalog entry, as a schema every migration ran in; a template
behind the code's migrations is rebuilt before it is copied; every workspace gets keys of
its own."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils.module_loading import import_string
from django_tenants.utils import schema_context

from apikeys.models import IdentitySecret, LookupKey, WriteKey
from tenants.models import Tenant, User
from tenants.services import tenant_create
from tenants.template import code_migrations, schema_from_template, template_missing
from tests.tenants.test_backup import table_counts

CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, is_identity,
                         identity_generation, character_maximum_length, numeric_precision, numeric_scale
                  FROM information_schema.columns WHERE table_schema = %(schema)s""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(schema)s",
    "constraints": """SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE connamespace = %(schema)s::regnamespace""",
    "triggers": """SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
                   JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
                   AND c.relnamespace = %(schema)s::regnamespace""",
    "functions": """SELECT proname, pg_get_function_identity_arguments(oid), pg_get_functiondef(oid) FROM pg_proc
                    WHERE pronamespace = %(schema)s::regnamespace""",
    "sequences": """SELECT sequencename, data_type, start_value, increment_by, max_value, cycle FROM pg_sequences
                    WHERE schemaname = %(schema)s""",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = %(schema)s",
    "relations": """SELECT relname, relkind, relpersistence, reloptions FROM pg_class
                    WHERE relnamespace = %(schema)s::regnamespace""",
}
PER_WORKSPACE = {"apikeys_writekey", "apikeys_lookupkey", "apikeys_identitysecret"}


def catalog(schema: str) -> dict[str, list]:
    """The schema's structure as text, its own name replaced (search_path is public only,
    so every name in it is written out qualified)."""
    name = re.compile(rf'"?\b{re.escape(schema)}\b"?')
    found = {}
    with connection.cursor() as cursor:
        cursor.execute("SET search_path TO public")
        for kind, sql in CATALOG.items():
            cursor.execute(sql, {"schema": schema})
            found[kind] = sorted(tuple(name.sub("<schema>", str(v)) if v is not None else None for v in row)
                                 for row in cursor.fetchall())
    connection.set_schema_to_public()
    return found


def test_a_copy_is_the_schema_the_migrations_make(db):
    """One schema copied from the template, one migrated from nothing: the same tables,
    columns, defaults, indexes, constraints, triggers, functions, sequences and seed rows."""
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "t_migrated_check"')
    call_command("migrate_schemas", schema_name="t_migrated_check", interactive=False, verbosity=0)
    with schema_context("t_migrated_check"):  # as a new workspace: its keys, its first months
        for handler in settings.WORKSPACE_CREATED_HANDLERS:
            import_string(handler)()
    connection.set_schema_to_public()
    schema_from_template(schema_name="t_copied_check")
    copied, migrated = catalog("t_copied_check"), catalog("t_migrated_check")
    for kind in CATALOG:
        assert (sorted(set(copied[kind]) - set(migrated[kind])), sorted(set(migrated[kind]) - set(copied[kind]))) \
            == ([], []), kind
    assert len(copied["triggers"]) >= 2 and len(copied["functions"]) >= 3 and len(copied["indexes"]) > 50
    assert table_counts("t_copied_check") == table_counts("t_migrated_check")
    with connection.cursor() as cursor:  # the copy's defaults draw from its own sequences
        cursor.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 't_copied_check' "
                       f"AND column_default LIKE '%%{settings.TENANT_TEMPLATE_SCHEMA}%%'")
        assert cursor.fetchone()[0] == 0


def test_every_workspace_has_keys_of_its_own(tenant, other_tenant):
    keys = {}
    for workspace in (tenant, other_tenant):
        with schema_context(workspace.schema_name):
            keys[workspace.slug] = (list(WriteKey.objects.values_list("key", flat=True)),
                                    list(LookupKey.objects.values_list("key", flat=True)),
                                    list(IdentitySecret.objects.values_list("secret", flat=True)))
    with schema_context(settings.TENANT_TEMPLATE_SCHEMA):
        template = (list(WriteKey.objects.values_list("key", flat=True)),
                    list(LookupKey.objects.values_list("key", flat=True)),
                    list(IdentitySecret.objects.values_list("secret", flat=True)))
    alpha, beta = keys["alpha"], keys["beta"]
    for index in range(3):
        assert len(alpha[index]) == len(beta[index]) == 1
        assert len({alpha[index][0], beta[index][0], *template[index]}) == 2 + len(template[index])


def test_a_template_behind_the_code_is_rebuilt_before_it_is_copied(committed_db):
    """A migration the template has not recorded (as after a deploy that adds one): the
    next tenant_create rebuilds the template first, and the new tenant's schema has it."""
    template = settings.TENANT_TEMPLATE_SCHEMA
    newest = max(name for app, name in code_migrations() if app == "customers")
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{template}".django_migrations WHERE app = %s AND name = %s',
                       ["customers", newest])
        cursor.execute(f'CREATE TABLE "{template}".left_by_an_old_template (id int)')
    assert template_missing() == {("customers", newest)}
    tenant = tenant_create(slug="after-deploy", name="After Deploy", admin_email="admin@after-deploy.test")
    try:
        assert template_missing() == frozenset()
        with connection.cursor() as cursor:
            cursor.execute("SELECT table_schema FROM information_schema.tables "
                           "WHERE table_name = 'left_by_an_old_template'")
            assert cursor.fetchall() == []
            cursor.execute(f'SELECT count(*) FROM "{tenant.schema_name}".django_migrations '
                           "WHERE app = %s AND name = %s", ["customers", newest])
            assert cursor.fetchone()[0] == 1
    finally:
        with schema_context(tenant.schema_name):
            User.objects.filter(email="admin@after-deploy.test").delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()


def test_without_a_usable_pg_dump_the_schema_is_migrated_instead(db, monkeypatch):
    """No pg_dump of the server's version (a newer server than the tools): sign-up still works,
    by running the migrations; the schema is the same."""
    from tenants import template
    from tenants.pgdump.postgres import BackupError

    def no_tools():
        raise BackupError("no pg_dump of version 99 or newer")

    monkeypatch.setattr(template, "template_dump", no_tools)
    schema_from_template(schema_name="t_migrated_fallback")
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "t_migrated_check"')
    call_command("migrate_schemas", schema_name="t_migrated_check", interactive=False, verbosity=0)
    with schema_context("t_migrated_check"):  # as a new workspace: its keys, its first months
        for handler in settings.WORKSPACE_CREATED_HANDLERS:
            import_string(handler)()
    connection.set_schema_to_public()
    assert catalog("t_migrated_fallback") == catalog("t_migrated_check")
    with schema_context("t_migrated_fallback"):
        assert WriteKey.objects.count() == LookupKey.objects.count() == IdentitySecret.objects.count() == 1
