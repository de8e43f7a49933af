"""The PostgreSQL side of tenant backups: which pg_dump and psql to run, how they reach
Django's database, and the schema names they may touch."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# libpq reads these from the environment; Django keeps them in OPTIONS.
_LIBPQ_OPTIONS = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
                  "sslkey": "PGSSLKEY", "options": "PGOPTIONS", "connect_timeout": "PGCONNECT_TIMEOUT",
                  "passfile": "PGPASSFILE", "target_session_attrs": "PGTARGETSESSIONATTRS"}


class BackupError(Exception):
    """A backup or restore refused or failed; the message is for the operator."""


@dataclass(frozen=True)
class PgTools:
    pg_dump: Path
    psql: Path
    major: int


def checked_identifier(schema_name: str) -> str:
    """The schema name, if it is a plain lower-case identifier: the only kind this code
    interpolates into SQL and rewrites in a dump (no quoting rules to get wrong)."""
    if not IDENTIFIER.fullmatch(schema_name or ""):
        raise BackupError(f"schema name {schema_name!r} is not a plain lower-case identifier; refusing")
    return schema_name


def server_version_num() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0])


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\)\s+(\d+)", out)
    return int(found.group(1)) if found else None


def _candidate_dirs(major: int) -> list[Path]:
    """Where client binaries may live: the embedded server's own (pgserver), Debian's per-major
    directories, then PATH. Located without importing pgserver (a development dependency)."""
    dirs = []
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.origin:
        dirs.append(Path(spec.origin).parent / "pginstall" / "bin")
    debian = Path("/usr/lib/postgresql")
    dirs.append(debian / str(major) / "bin")
    if debian.is_dir():
        dirs += sorted((p / "bin" for p in debian.iterdir() if p.name.isdigit()), key=lambda p: -int(p.parent.name))
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    return dirs


def pg_tools(*, server_version: int) -> PgTools:
    """pg_dump and psql from one directory, preferring the server's major version.

    TRICKY: pg_dump refuses a server newer than itself, and a newer pg_dump writes SQL the
    older server may reject (17's `SET transaction_timeout`); so the same major is taken
    when there is one, else the closest newer one."""
    major = server_version // 10000
    found: list[tuple[int, Path]] = []
    for directory in dict.fromkeys(_candidate_dirs(major)):
        dump, psql = directory / "pg_dump", directory / "psql"
        if dump.is_file() and psql.is_file() and os.access(dump, os.X_OK):
            tool_major = _tool_major(dump)
            if tool_major is not None and tool_major >= major:
                found.append((tool_major, directory))
    if not found:
        raise BackupError(f"no pg_dump/psql of PostgreSQL {major} or newer found (server is {major}); "
                          "install the PostgreSQL client matching the server")
    tool_major, directory = min(found, key=lambda item: item[0])  # stable: first directory of that major
    return PgTools(pg_dump=directory / "pg_dump", psql=directory / "psql", major=tool_major)


def libpq_env(*, settings_dict: dict) -> dict[str, str]:
    """The environment that points pg_dump/psql at Django's database. The password travels
    here, never on a command line (visible to every user in `ps`). HOST may be empty with
    the socket directory in OPTIONS (the embedded server's URL)."""
    env = dict(os.environ)
    options = settings_dict.get("OPTIONS") or {}
    host = settings_dict.get("HOST") or options.get("host") or ""
    values = {"PGHOST": host, "PGPORT": settings_dict.get("PORT") or options.get("port") or "",
              "PGUSER": settings_dict.get("USER") or "", "PGPASSWORD": settings_dict.get("PASSWORD") or "",
              "PGDATABASE": settings_dict["NAME"]}
    values.update({var: options[key] for key, var in _LIBPQ_OPTIONS.items() if options.get(key) is not None})
    # Empty values are left to libpq's own defaults and PG* variables, as Django's
    # connection (libpq too) leaves them.
    env.update({var: str(value) for var, value in values.items() if value not in ("", None)})
    return env


def schema_exists(*, schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


def schema_drop(*, schema_name: str) -> None:
    """Drop a schema this restore loaded (never one it did not create)."""
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{checked_identifier(schema_name)}" CASCADE')
