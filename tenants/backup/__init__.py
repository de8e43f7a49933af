"""Backing up one tenant and restoring it as a NEW tenant (another slug, another schema).

A backup is one tar: `schema.sql.gz`, a plain `pg_dump --schema=<schema>` of the tenant's
schema, and `tenant.json`, the public-schema facts that dump cannot hold (name, status,
roles, departments, memberships by email, migration state). PostgreSQL cannot restore a
schema under another name, so restore rewrites the schema's name in the SQL as it streams
it into psql — never inside COPY data, which passes through byte for byte.

Restore is all or nothing: psql loads the dump in one transaction (a failure leaves no
schema), then the public rows, the department remap, the migrations up to the current code
and the memberships run in one Django transaction; if that fails the loaded schema is
dropped again. A backup is SQL run with the application's database role: restore only
backups you made.

    postgres.py  which pg_dump/psql, their environment, schema names
    rewrite.py   the schema rename inside a dump (pure)
    archive.py   writing the tar, reading and checking it
    restore.py   loading it as a new tenant
"""

from tenants.backup.archive import (  # noqa: F401
    DUMP, FORMAT, FORMAT_VERSION, MANIFEST, Backup, backup_read, migration_state, strata_version, tenant_backup,
    tenant_facts,
)
from tenants.pgdump.postgres import (  # noqa: F401
    BackupError, PgTools, libpq_env, pg_tools, schema_drop, schema_exists, server_version_num,
)
from tenants.pgdump.rewrite import rewrite_dump  # noqa: F401
