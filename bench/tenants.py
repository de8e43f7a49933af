"""Tenants by the thousand: provisioning, request routing and migrating them all.

Thing, on `--many-tenants` fresh bench tenants (default 1,000; --quick 50), each made by
`tenant_create` (a copy of the migrated template):

- routing: resolving a request's host to its tenant as TenantRoutingMiddleware does
  (`tenants.routing.routed` with django-tenants' own domain query as the loader), for
  hosts drawn at random from all of them — per request, remembered (the steady state)
  against the loader alone (the domain query every request would make without it);
- migrating: `migrate_schemas` over every tenant schema with django-tenants'
  multiprocessing executor (TENANT_MULTIPROCESSING_MAX_PROCESSES) against the standard,
  one schema after the other — nothing is left to apply, so both measure the per-schema
  cost of checking (what a deploy pays for each tenant before its new migrations).

ratio = multiprocessing migrate seconds ÷ standard migrate seconds (lower is better); the
routing numbers are reported beside it (target: ≤ 1 ms added to a request).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from bench import Result

DEFAULT_TENANTS, QUICK_TENANTS = 1_000, 50
LOOKUPS = 20_000


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--many-tenants", type=int, default=None,
                       help=f"tenants to create (default {DEFAULT_TENANTS:_}, --quick {QUICK_TENANTS})")


def _create(count: int, run_id: str) -> tuple[list[str], list[float]]:
    from django.db import connection
    from tqdm import tqdm

    from bench.support import admin_email_for
    from tenants.services import tenant_create

    slugs, seconds = [], []
    for i in tqdm(range(count), desc="tenants", unit="tenant", disable=None):
        slug = f"bench-{run_id}-t{i}"
        connection.set_schema_to_public()
        started = time.perf_counter()
        tenant_create(slug=slug, name=f"Bench {i}", admin_email=admin_email_for(slug))
        seconds.append(time.perf_counter() - started)
        slugs.append(slug)
    return slugs, seconds


def _routing(hosts: list[str]) -> tuple[float, float]:
    """µs per lookup: remembered (after a first pass) and the loader alone."""
    from django.db import connection

    from tenants.models import Domain
    from tenants.routing import routed

    def load(host):
        return Domain.objects.select_related("tenant").get(domain=host).tenant

    rng = random.Random(7)
    asked = [rng.choice(hosts) for _ in range(LOOKUPS)]
    connection.set_schema_to_public()
    for host in hosts:  # every host remembered once, as a running server would have
        routed(host, lambda host=host: load(host))
    started = time.perf_counter()
    for host in asked:
        routed(host, lambda host=host: load(host))
    remembered = (time.perf_counter() - started) / LOOKUPS * 1e6
    started = time.perf_counter()
    for host in asked[:5_000]:
        load(host)
    loader = (time.perf_counter() - started) / 5_000 * 1e6
    return remembered, loader


def _migrate(executor: str) -> float:
    from django.core.management import call_command
    from django.db import connection

    connection.set_schema_to_public()
    started = time.perf_counter()
    call_command("migrate_schemas", tenant=True, executor=executor, interactive=False, verbosity=0)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> list[Result]:
    from bench.support import drop_tenants, new_run_id
    from tenants.models import Tenant

    count = args.many_tenants or (QUICK_TENANTS if args.quick else DEFAULT_TENANTS)
    run_id = new_run_id()
    slugs: list[str] = []
    try:
        slugs, create_s = _create(count, run_id)
        hosts = [t.get_primary_domain().domain for t in Tenant.objects.filter(slug__in=slugs)]
        print(f"tenants: routing over {len(hosts)} hosts…", file=sys.stderr, flush=True)
        remembered_us, loader_us = _routing(hosts)
        schemas = Tenant.objects.exclude(schema_name="public").count()
        print(f"tenants: migrate_schemas over {schemas} schemas, standard then multiprocessing…",
              file=sys.stderr, flush=True)
        standard_s = _migrate("standard")
        parallel_s = _migrate("multiprocessing")
    finally:
        drop_tenants(slugs)
    return [Result(
        name="tenants",
        ratio=parallel_s / standard_s,
        measurements={
            "tenants_created": count, "schemas_migrated": schemas,
            "create_median_s": statistics.median(create_s), "create_max_s": max(create_s),
            "routing_remembered_us": round(remembered_us, 1), "routing_loader_us": round(loader_us, 1),
            "migrate_standard_s": standard_s, "migrate_multiprocessing_s": parallel_s,
            "migrate_standard_ms_per_schema": round(standard_s / schemas * 1000, 1),
        },
        ratio_means="migrate_schemas over every tenant: multiprocessing executor s ÷ standard s (lower is better)",
    )]
