"""New tenant schemas are copies of a migrated template, not a fresh run of every migration.

Running the ~100 tenant migrations takes a second or more per tenant; replaying a dump of a
schema that has had them takes a fraction (bench/tenant_provisioning.py). The template is an
ordinary schema no tenant owns (TENANT_TEMPLATE_SCHEMA). It is dumped with pg_dump once per
process (and again whenever it is rebuilt) and each copy replays that dump under the new
schema's name, in the provisioning transaction: tables with their rows (the migrations'
seed data and django_migrations), sequences at their values, constraints and indexes by
their migration names, storage options, functions and triggers — what the migrations make,
which tests/tenants/test_template.py checks catalog entry by catalog entry.
(django-tenants' clone_schema was tried first: it renames unique constraints, drops
fillfactor and changes a sequence's type, so later migrations could not find them.)

It is kept correct when migrations change: before each copy its recorded migrations are
compared with the code's; any missing and it is dropped and migrated again, committed
before it is dumped. A copy then gets keys of its own: what must differ per workspace is
issued again in the new schema by WORKSPACE_CREATED_HANDLERS.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterable, Iterator

import structlog
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils.module_loading import import_string
from django_tenants.utils import schema_context, schema_exists

from tenants.pgdump.postgres import BackupError, libpq_env, pg_tools, server_version_num
from tenants.pgdump.rewrite import COPY_START, DUMP_COMPLETE, rewrite_dump

logger = structlog.get_logger(__name__)
_LOCK = 726_169_001  # the advisory lock of the template: held while it is checked and rebuilt
_SETTING = re.compile(rb"^SET (\w+) = ")
_dumps: dict[tuple, list[bytes]] = {}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def code_migrations() -> frozenset[tuple[str, str]]:
    """(app, name) of every migration in the code (read from disk once per process)."""
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def template_missing() -> frozenset[tuple[str, str]]:
    """The code's migrations the template has not recorded (all of them when it does not exist)."""
    template = settings.TENANT_TEMPLATE_SCHEMA
    if not schema_exists(template):
        return code_migrations()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {_quoted(template)}.django_migrations")
        recorded = set(cursor.fetchall())
    return code_migrations() - recorded


def template_ensure() -> None:
    """Migrate the template from nothing when it lacks a migration of the code, in a
    transaction of its own: pg_dump reads it from another connection, so it must be
    committed before a copy is made. Two processes never rebuild it at once (a lock)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        if template_missing():
            template = settings.TENANT_TEMPLATE_SCHEMA
            with connection.cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS {_quoted(template)} CASCADE")
                cursor.execute(f"CREATE SCHEMA {_quoted(template)}")
            call_command("migrate_schemas", schema_name=template, interactive=False, verbosity=0)
            connection.set_schema_to_public()


def template_dump() -> list[bytes]:
    """The template as pg_dump's plain SQL lines, kept per process until it is rebuilt
    (a rebuilt template is a new schema: a new oid)."""
    template = settings.TENANT_TEMPLATE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [template])
        found = cursor.fetchone()
    if found is None:
        raise BackupError(f"there is no template schema {template}: template_ensure() first")
    key = (connection.settings_dict["NAME"], found[0])
    if key not in _dumps:
        tools = pg_tools(server_version=server_version_num())
        done = subprocess.run([str(tools.pg_dump), f"--schema={template}", "--no-owner", "--no-privileges"],
                              capture_output=True, env=libpq_env(settings_dict=connection.settings_dict), check=False)
        lines = done.stdout.splitlines(keepends=True)
        if done.returncode != 0 or not any(line.rstrip() == DUMP_COMPLETE for line in lines[-5:]):
            raise BackupError(f"pg_dump of the template failed: {done.stderr.decode(errors='replace')[-2000:]}")
        _dumps.clear()
        _dumps[key] = lines
    return _dumps[key]


def schema_from_template(*, schema_name: str) -> None:
    """Create `schema_name` as a copy of the template (call template_ensure() before the
    transaction), then run the workspace handlers in it. Inside the caller's transaction:
    a failure later in provisioning leaves no schema. Without a usable pg_dump (none of the
    server's version or newer), the schema is migrated instead: slower, never refused."""
    try:
        dump = template_dump()
    except (BackupError, OSError) as error:
        logger.warning("template_dump_unavailable", error=str(error)[:300])
        _migrated(schema_name)
    else:
        _replay(rewrite_dump(dump, source=settings.TENANT_TEMPLATE_SCHEMA, target=schema_name))
    connection.set_schema_to_public()  # the dump emptied the search path; django-tenants sets it again
    with schema_context(schema_name):
        for handler in settings.WORKSPACE_CREATED_HANDLERS:
            import_string(handler)()


def _migrated(schema_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {_quoted(schema_name)}")
    call_command("migrate_schemas", schema_name=schema_name, interactive=False, verbosity=0)


def _local(line: bytes) -> bytes:
    """pg_dump's session settings, made to end with the transaction."""
    line = _SETTING.sub(rb"SET LOCAL \1 = ", line)
    return line.replace(b"set_config('search_path', '', false)", b"set_config('search_path', '', true)")


def _replay(lines: Iterable[bytes]) -> None:
    """Run a plain dump on this connection: its statements as multi-statement batches, its
    COPY blocks through psycopg's COPY (data passed through untouched)."""
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for kind, payload in _parts(lines):
            if kind == "sql":
                raw.execute(payload.decode())
            else:
                statement, data = payload
                with raw.copy(statement.decode()) as copy:
                    copy.write(data)


def _parts(lines: Iterable[bytes]) -> Iterator[tuple[str, object]]:
    statements: list[bytes] = []
    copying: bytes | None = None
    data: list[bytes] = []
    for line in lines:
        if copying is not None:
            if line.rstrip(b"\r\n") == b"\\.":
                yield "copy", (copying, b"".join(data))
                copying, data = None, []
            else:
                data.append(line)
            continue
        bare = line.rstrip(b"\r\n")
        if COPY_START.fullmatch(bare):
            if statements:
                yield "sql", b"".join(statements)
                statements = []
            copying = bare.rstrip(b";")
        elif not line.startswith(b"\\"):  # psql's own commands (\restrict …) are not SQL
            statements.append(_local(line))
    if statements:
        yield "sql", b"".join(statements)
