"""Restoring a backup as a new tenant: psql loads the renamed dump in one transaction, then
the public rows, the department remap, the migrations and the memberships in another; if
that one fails, the loaded schema is dropped again."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from tenants.backup.archive import CHUNK, UNREADABLE, Backup, Progress, backup_read
from tenants.pgdump.postgres import (
    IDENTIFIER, BackupError, PgTools, libpq_env, pg_tools, schema_drop, schema_exists, server_version_num,
)
from tenants.pgdump.rewrite import checked_lines, rewrite_dump
from tenants.models import Department, Domain, Role, Tenant, TenantMembership, User
from tenants.services import roles_seed, schema_name_for, slug_problems, tenant_domain_for

_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?")


@dataclass(frozen=True)
class RestoreResult:
    tenant: Tenant
    source_slug: str
    restored: list[str] = field(default_factory=list)  # member emails
    skipped: list[str] = field(default_factory=list)  # emails with no user here


def dump_load(*, backup: Backup, target: str, tools: PgTools, progress: Progress | None = None) -> None:
    """Stream the rewritten dump into psql in one transaction.

    TRICKY: psql commits its --single-transaction when its input ends, whatever came
    before; so when the dump turns out truncated, corrupt or foreign part-way, psql is
    killed (the server rolls back) instead of being sent end-of-file."""
    digest, state = hashlib.sha256(), {}
    command = [str(tools.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"]
    with tempfile.TemporaryFile() as errors:
        # Query results (set_config, setval) go to /dev/null: a full stdout pipe would block psql.
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                                   env=libpq_env(settings_dict=connection.settings_dict))
        finished = False
        try:
            with backup.open_sql() as sql:
                lines = checked_lines(sql, source=backup.schema_name, digest=digest, state=state)
                _feed(process, rewrite_dump(lines, source=backup.schema_name, target=target), progress)
            if digest.hexdigest() != backup.manifest["dump"]["sha256"] or not state.get("complete"):
                raise BackupError(f"{backup.path}: the dump is incomplete or damaged (checksum or end marker)")
            finished = True
        except BrokenPipeError:
            finished = True  # psql stopped on an error: its message is below
        except UNREADABLE as error:
            raise BackupError(f"{backup.path}: the dump cannot be read ({error})") from None
        finally:
            if not finished:
                process.kill()
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            code = process.wait()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-2000:]
            raise BackupError(f"psql could not load the dump (nothing was restored): {message}")


def _feed(process: subprocess.Popen, lines: Iterable[bytes], progress: Progress | None) -> None:
    batch, size = [], 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= CHUNK:
            process.stdin.write(b"".join(batch))
            if progress:
                progress(size)
            batch, size = [], 0
    process.stdin.write(b"".join(batch))
    if progress:
        progress(size)


def restore_problems(*, slug: str, domain: str) -> list[str]:
    """Every reason the restore target is refused, before anything is loaded."""
    problems = [f"{p.path}: {p.message} [{p.code}]" for p in slug_problems(slug)]
    if problems:
        return problems
    schema_name = schema_name_for(slug)
    if not IDENTIFIER.fullmatch(schema_name):
        problems.append(f"slug: schema name {schema_name!r} is not a plain identifier")
    elif schema_exists(schema_name=schema_name):
        problems.append(f"slug: schema {schema_name} already exists (a tenant being created or a leftover)")
    if not _HOST.fullmatch(domain):
        problems.append(f"domain: {domain!r} is not a lower-case host name")
    elif Domain.objects.filter(domain=domain).exists():
        problems.append(f"domain: {domain} is already in use")
    return problems


def tenant_restore(*, path: Path, slug: str, name: str | None = None, domain: str | None = None,
                   suspended: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Recreate a backed-up tenant as a new tenant `slug`: load the dump under the new
    schema name, create its public rows, migrate it to the current code and recreate the
    memberships of users that exist. The source tenant is not read or written."""
    slug, domain = (slug or "").strip(), (domain or tenant_domain_for((slug or "").strip())).strip().lower()
    problems = restore_problems(slug=slug, domain=domain)
    if problems:
        raise BackupError("; ".join(problems))
    backup = backup_read(path=path)
    facts = backup.manifest["tenant"]
    name = (name or facts.get("name") or slug).strip()[:200]
    target = schema_name_for(slug)
    dump_load(backup=backup, target=target, tools=pg_tools(server_version=server_version_num()), progress=progress)
    try:
        with transaction.atomic():
            tenant = _public_rows_create(backup=backup, slug=slug, name=name, domain=domain, schema_name=target,
                                         suspended=suspended)
            # Brings an older backup up to the current code, inside this transaction.
            call_command("migrate_schemas", schema_name=target, interactive=False, verbosity=0)
            connection.set_schema_to_public()
            restored, skipped = memberships_restore(tenant=tenant, memberships=backup.manifest.get("memberships", []))
    except IntegrityError:
        connection.set_schema_to_public()
        schema_drop(schema_name=target)
        raise BackupError(f"slug: “{slug}” or its domain was taken while restoring; nothing was kept") from None
    except BaseException:
        connection.set_schema_to_public()
        schema_drop(schema_name=target)
        raise
    return RestoreResult(tenant=tenant, source_slug=facts.get("slug", ""), restored=restored, skipped=skipped)


def _public_rows_create(*, backup: Backup, slug: str, name: str, domain: str, schema_name: str,
                        suspended: bool) -> Tenant:
    status = Tenant.Status.SUSPENDED if suspended else backup.manifest["tenant"].get("status", Tenant.Status.ACTIVE)
    if status not in Tenant.Status.values:
        status = Tenant.Status.SUSPENDED
    tenant = Tenant.objects.create(schema_name=schema_name, slug=slug, name=name, status=status)
    Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
    roles_seed(tenant=tenant)
    for role in backup.manifest.get("roles", []):
        if not role.get("is_builtin"):
            Role.objects.create(tenant=tenant, key=role["key"], name=role["name"],
                                description=role.get("description", ""), permissions=role.get("permissions", []))
    remap = {}
    for department in backup.manifest.get("departments", []):
        remap[department["id"]] = Department.objects.create(tenant=tenant, name=department["name"]).pk
    departments_remap(schema_name=schema_name, remap=remap)
    return tenant


def departments_remap(*, schema_name: str, remap: dict[int, int]) -> None:
    """Point the tenant's `department_id` columns at the new tenant's departments.

    TRICKY: tenant tables name public-schema departments by id, without a foreign key
    (segments, plays). Left alone they would name the *source* tenant's departments,
    which some screens read by id alone. Ids the source no longer had become NULL."""
    olds, news = list(remap), list(remap.values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = %s "
                       "AND column_name = 'department_id' AND data_type IN ('bigint', 'integer') "
                       "ORDER BY table_name", [schema_name])
        for (table,) in cursor.fetchall():
            qualified = f'"{schema_name}"."{table}"'
            cursor.execute(f"UPDATE {qualified} SET department_id = NULL "
                           "WHERE department_id IS NOT NULL AND NOT (department_id = ANY(%s::bigint[]))", [olds])
            cursor.execute(f"UPDATE {qualified} AS t SET department_id = m.new_id "
                           "FROM unnest(%s::bigint[], %s::bigint[]) AS m(old_id, new_id) "
                           "WHERE t.department_id = m.old_id", [olds, news])


def memberships_restore(*, tenant: Tenant, memberships: list[dict]) -> tuple[list[str], list[str]]:
    """Seats for the backed-up members who have an account here (users are not in the
    backup); returns (restored, skipped) emails."""
    restored, skipped = [], []
    roles = {role.key: role for role in Role.objects.filter(tenant=tenant)}
    departments = {d.name.lower(): d for d in Department.objects.filter(tenant=tenant)}
    emails = [(entry.get("email") or "").strip().lower() for entry in memberships]
    users = {user.email.lower(): user for user in User.objects.filter(email__in=emails)}
    for email, entry in zip(emails, memberships):
        user = users.get(email)
        role = roles.get(entry.get("role")) or next(
            (r for r in roles.values() if r.name == entry.get("role_name")), None)
        if user is None or role is None:
            skipped.append(email)
            continue
        department = departments.get((entry.get("department") or "").lower())
        TenantMembership.objects.create(user=user, tenant=tenant, role=role, department=department)
        restored.append(email)
    return restored, skipped
