"""Writing a tenant's backup tar and reading one back (checked, streamed)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.metadata
import io
import json
import os
import subprocess
import tarfile
import tempfile
import tomllib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

from tenants.pgdump.postgres import BackupError, PgTools, checked_identifier, libpq_env, pg_tools, server_version_num
from tenants.pgdump.rewrite import CREATE_SCHEMA, DUMP_COMPLETE
from tenants.models import Department, Role, Tenant, TenantMembership

FORMAT, FORMAT_VERSION = "strata-tenant-backup", 1
MANIFEST, DUMP = "tenant.json", "schema.sql.gz"
CHUNK = 1 << 20
Progress = Callable[[int], None]
# What a truncated or damaged tar or gzip stream raises while it is read.
UNREADABLE = (tarfile.TarError, OSError, EOFError, zlib.error)


def strata_version() -> str | None:
    try:
        return importlib.metadata.version("strata")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        return None


def migration_state(*, schema_name: str) -> dict[str, list[str]]:
    """Applied migrations per app inside the schema (the rows are in the dump too; this is
    for people reading the manifest and for deciding what a restore will migrate)."""
    state: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{checked_identifier(schema_name)}".django_migrations ORDER BY app, id')
        for app, name in cursor.fetchall():
            state.setdefault(app, []).append(name)
    return state


def tenant_facts(*, tenant: Tenant, now: datetime) -> dict:
    """What the public schema knows of the tenant and a restore needs to recreate it."""
    memberships = TenantMembership.objects.filter(tenant=tenant).select_related("user", "role", "department")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "backed_up_at": now.isoformat(),
        "strata_version": strata_version(),
        "tenant": {"name": tenant.name, "slug": tenant.slug, "schema_name": tenant.schema_name,
                   "status": tenant.status, "created_at": tenant.created_at.isoformat(),
                   "domains": list(tenant.domains.order_by("domain").values_list("domain", flat=True))},
        "migrations": migration_state(schema_name=tenant.schema_name),
        "roles": [{"key": r.key, "name": r.name, "description": r.description, "is_builtin": r.is_builtin,
                   "permissions": list(r.permissions)} for r in Role.objects.filter(tenant=tenant).order_by("key")],
        # ids: the tenant's rows name departments by public-schema id (department_id).
        "departments": [{"id": d.pk, "name": d.name} for d in Department.objects.filter(tenant=tenant)],
        "memberships": [{"email": m.user.email, "role": m.role.key, "role_name": m.role.name,
                         "department": m.department.name if m.department else None} for m in memberships],
    }


def _dump_to(target: Path, *, tools: PgTools, schema_name: str, progress: Progress | None) -> dict:
    """Stream pg_dump's plain SQL into a gzip file; returns its size and hash of the SQL."""
    digest, size, tail = hashlib.sha256(), 0, b""
    command = [str(tools.pg_dump), f"--schema={checked_identifier(schema_name)}", "--no-owner", "--no-privileges",
               "--format=plain", "--encoding=UTF8"]
    with tempfile.TemporaryFile() as errors, gzip.open(target, "wb", compresslevel=6) as out:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors,
                                   env=libpq_env(settings_dict=connection.settings_dict))
        for chunk in iter(lambda: process.stdout.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
            if progress:
                progress(len(chunk))
        if process.wait() != 0:
            errors.seek(0)
            raise BackupError(f"pg_dump failed: {errors.read().decode(errors='replace').strip()[-2000:]}")
    if DUMP_COMPLETE not in tail:
        raise BackupError("pg_dump ended without its 'dump complete' line; the backup is not usable")
    return {"name": DUMP, "bytes": size, "sha256": digest.hexdigest(),
            "pg_dump_major": tools.major, "compression": "gzip"}


def tenant_backup(*, tenant: Tenant, out: Path, now: datetime, progress: Progress | None = None) -> int:
    """Write the tenant's backup tar to `out` (atomically: a `.part` file renamed at the
    end, so a failed run never leaves a plausible-looking tar); returns its size in bytes."""
    if tenant.is_public:
        raise BackupError("the public schema is not a tenant; back up the database instead")
    tools = pg_tools(server_version=server_version_num())
    facts = tenant_facts(tenant=tenant, now=now)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".strata-dump-", suffix=".gz") as dump:
        try:
            facts["dump"] = _dump_to(Path(dump.name), tools=tools, schema_name=tenant.schema_name,
                                     progress=progress)
            manifest = json.dumps(facts, indent=2, sort_keys=True).encode()
            # Customer data: readable by the owner only.
            descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(manifest), int(now.timestamp()), 0o600
                tar.addfile(info, io.BytesIO(manifest))
                tar.add(dump.name, arcname=DUMP)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    return out.stat().st_size


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: dict

    @property
    def schema_name(self) -> str:
        return self.manifest["tenant"].get("schema_name") or ""

    @contextlib.contextmanager
    def open_sql(self) -> Iterator[io.BufferedIOBase]:
        """The dump's SQL as a binary stream, decompressed on the fly (never all in memory)."""
        name = self.manifest["dump"]["name"]
        with tarfile.open(self.path, "r:") as tar, tar.extractfile(name) as member:
            if name.endswith(".gz"):
                with gzip.GzipFile(fileobj=member) as sql:
                    yield sql
            else:
                yield member


def backup_read(*, path: Path) -> Backup:
    """Open and check a backup tar: a Strata manifest, a dump member, and a dump that
    creates the schema the manifest names."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        with tarfile.open(path, "r:") as tar:
            names = set(tar.getnames())
            if MANIFEST not in names:
                raise BackupError(f"{path}: not a Strata backup (no {MANIFEST} inside)")
            manifest = json.loads(tar.extractfile(MANIFEST).read())
    except UNREADABLE as error:
        raise BackupError(f"{path}: not a readable tar file ({error})") from None
    except ValueError:  # UnicodeDecodeError included
        raise BackupError(f"{path}: {MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not a Strata backup ({MANIFEST} has no format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path}: backup format {manifest.get('format_version')} is not supported "
                          f"(this code reads {FORMAT_VERSION})")
    if not isinstance(manifest.get("tenant"), dict) or not isinstance(manifest.get("dump"), dict):
        raise BackupError(f"{path}: {MANIFEST} lacks its tenant or dump section")
    dump = manifest["dump"]
    if not isinstance(dump.get("name"), str) or dump["name"] not in names or not {"bytes", "sha256"} <= set(dump):
        raise BackupError(f"{path}: the dump named in {MANIFEST} is missing")
    backup = Backup(path=path, manifest=manifest)
    checked_identifier(backup.schema_name)
    created = _created_schema(backup)
    if created is None:
        raise BackupError(f"{path}: the dump creates no schema (not a pg_dump of one tenant schema)")
    if created != backup.schema_name:
        raise BackupError(f"{path}: the dump creates schema {created!r} but {MANIFEST} names "
                          f"{backup.schema_name!r}; refusing")
    return backup


def _created_schema(backup: Backup) -> str | None:
    """The schema the dump's `CREATE SCHEMA` makes (pg_dump writes it near the top)."""
    try:
        with backup.open_sql() as sql:
            for line in sql:
                found = CREATE_SCHEMA.fullmatch(line.rstrip(b"\r\n"))
                if found:
                    return found.group(1).decode("ascii", errors="replace")
                if line.startswith((b"CREATE TABLE", b"COPY ")):
                    break
    except UNREADABLE as error:
        raise BackupError(f"{backup.path}: the dump cannot be read ({error})") from None
    return None
