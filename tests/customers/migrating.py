"""Migration tests of the customers app: a scratch tenant schema taken to a migration and
read or written there with raw SQL (the models are those of the newest migration)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management import call_command
from django.db import connection


def scratch_schema(schema: str, *, at: str) -> None:
    """A new schema migrated in full, then back to customers' migration `at`."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"')
    call_command("migrate_schemas", schema_name=schema, interactive=False, verbosity=0)
    call_command("migrate_schemas", "customers", at, schema_name=schema, interactive=False, verbosity=0)


@contextmanager
def migrated_to(schema: str, target: str | None = None) -> Iterator:
    """A cursor in `schema` once customers' migrations are at `target` (None: the newest).
    Deferred foreign keys are checked on leaving, as if committed, so the next migration
    finds no check pending."""
    connection.set_schema_to_public()
    call_command("migrate_schemas", "customers", *([target] if target else []), schema_name=schema,
                 interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f'SET search_path TO "{schema}", public')
        yield cursor
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    connection.set_schema_to_public()
