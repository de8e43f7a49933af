"""How long `tenants.services.tenant_create` takes, against copying the table structure.

Thing: `tenant_create` (Tenant row, CREATE SCHEMA, every tenant migration through
django-tenants' `migrate_schemas`, Domain, admin user, membership) — one transaction.

Baseline, interleaved with it in the same process: the bare DDL for the same tables —
`CREATE SCHEMA` plus `CREATE TABLE new.t (LIKE first_tenant.t INCLUDING ALL)` for every
table of the first bench tenant's schema, also in one transaction. It copies columns,
defaults, identity sequences, constraints other than foreign keys and indexes; it skips
foreign keys and rows (django_migrations, content types), so it is a lower bound.

ratio = median(tenant_create) / median(clone).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import Result

DEFAULT_TENANTS = 20
QUICK_TENANTS = 5


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--tenants", type=int, default=None,
        help=f"tenants to create (default {DEFAULT_TENANTS}, --quick {QUICK_TENANTS})",
    )


def _tables(schema: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
            [schema],
        )
        return [row[0] for row in cursor.fetchall()]


def _clone(source: str, target: str, tables: list[str]) -> None:
    from django.db import connection, transaction

    from bench.support import quote_ident

    connection.set_schema_to_public()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quote_ident(target)}")
        for table in tables:
            cursor.execute(
                f"CREATE TABLE {quote_ident(target)}.{quote_ident(table)} "
                f"(LIKE {quote_ident(source)}.{quote_ident(table)} INCLUDING ALL)"
            )


def _summary(prefix: str, seconds: list[float]) -> dict[str, float]:
    from bench.support import percentile

    return {
        f"{prefix}median_s": statistics.median(seconds),
        f"{prefix}p90_s": percentile(seconds, 90),
        f"{prefix}min_s": min(seconds),
        f"{prefix}max_s": max(seconds),
    }


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from tqdm import tqdm

    from bench.support import CLONE_SCHEMA_PREFIX, admin_email_for, drop_schemas, drop_tenants, new_run_id
    from tenants.services import tenant_create

    count = args.tenants or (QUICK_TENANTS if args.quick else DEFAULT_TENANTS)
    if count < 1:
        raise SystemExit("bench: --tenants must be at least 1")
    run_id = new_run_id()
    slugs: list[str] = []
    clones: list[str] = []
    create_s: list[float] = []
    clone_s: list[float] = []
    tables: list[str] = []
    source = ""
    try:
        for i in tqdm(range(count), desc="tenant_provisioning", unit="tenant", disable=None):
            slug = f"bench-{run_id}-{i}"
            slugs.append(slug)
            connection.set_schema_to_public()
            started = time.perf_counter()
            tenant = tenant_create(slug=slug, name=f"Bench {run_id} {i}", admin_email=admin_email_for(slug))
            create_s.append(time.perf_counter() - started)
            if not source:
                source = tenant.schema_name
                tables = _tables(source)

            clone = f"{CLONE_SCHEMA_PREFIX}{run_id}_{i}"
            clones.append(clone)
            started = time.perf_counter()
            _clone(source, clone, tables)
            clone_s.append(time.perf_counter() - started)
    finally:
        drop_schemas(clones)
        drop_tenants(slugs)

    measurements: dict[str, float | int] = {"tenants": count, "tables": len(tables)}
    measurements |= _summary("", create_s)
    measurements |= _summary("clone_", clone_s)
    return [
        Result(
            name="tenant_provisioning",
            ratio=statistics.median(create_s) / statistics.median(clone_s),
            measurements=measurements,
            ratio_means="median tenant_create / median CREATE SCHEMA + CREATE TABLE … (LIKE … INCLUDING ALL)",
        )
    ]
