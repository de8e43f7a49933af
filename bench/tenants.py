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

- worker memory (`--tenant-parts worker`): every tenant gets two dynamic segments and three
  customers, then `--worker-rounds` rounds run each tenant's scheduled-evaluation task
  (`segments.evaluate_due`, as a Celery worker would, one process for all tenants, its
  connection recycled as the worker's is: ops.tasking.connection_recycle); the process's
  resident memory after each round and the most private memory its PostgreSQL backend held
  during it (pg_backend_memory_contexts, read every 25 tenants) are reported.

ratio = multiprocessing migrate seconds ÷ standard migrate seconds (lower is better); the
routing numbers are reported beside it (target: ≤ 1 ms added to a request). The worker part
reports its own ratio: resident memory after the last round ÷ after the first (flat: ≈ 1).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from bench import Result

DEFAULT_TENANTS, QUICK_TENANTS = 1_000, 50
LOOKUPS = 20_000
FIRST_ROUND, DAY = datetime(2026, 12, 1, 12, tzinfo=timezone.utc), timedelta(days=1)


PARTS = ("routing", "migrate", "worker")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--many-tenants", type=int, default=None,
                       help=f"tenants to create (default {DEFAULT_TENANTS:_}, --quick {QUICK_TENANTS})")
    group.add_argument("--tenant-parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    group.add_argument("--worker-rounds", type=int, default=4, help="scheduled-evaluation rounds over every tenant")


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


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _backend_mb() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")
        return cursor.fetchone()[0] / 2**20


def _worker_memory(slugs: list[str], rounds: int) -> Result:
    """Each tenant's evaluate_due, round after round, in this one process (see the docstring)."""
    from django.conf import settings
    from django.db import connection
    from django_tenants.utils import schema_context
    from tqdm import tqdm

    from customers.models import Customer
    from ops.tasking import connection_recycle
    from segments import tasks
    from segments.models import Segment
    from tenants.models import Tenant

    schemas = list(Tenant.objects.filter(slug__in=slugs).values_list("schema_name", flat=True))
    rule = {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}
    for schema in tqdm(schemas, desc="segments per tenant", unit="tenant", disable=None):
        with schema_context(schema):
            Customer.objects.bulk_create([Customer(external_id=f"c{i}", plan="pro" if i else "free") for i in range(3)])
            for key in ("pro", "pro-2"):
                Segment.objects.create(key=key, name=key, definition=rule, definition_version=1)
    settings.SEGMENT_DUE_SLICE_SECONDS = 20.0
    rss, backend, seconds = [], [], []
    for round_ in range(rounds):
        started = time.perf_counter()
        peak = 0.0
        for i, schema in enumerate(tqdm(schemas, desc=f"round {round_ + 1}", unit="tenant", disable=None)):
            with schema_context(schema):
                Segment.objects.update(next_evaluation_at=None)  # due again
                tasks.evaluate_due.run(now_iso=(FIRST_ROUND + round_ * DAY).isoformat())
                if i % 25 == 24:  # the backend's memory just before a recycle may close it
                    peak = max(peak, _backend_mb())
                connection_recycle()  # as the worker does after each task (task_postrun)
        seconds.append(time.perf_counter() - started)
        connection.set_schema_to_public()
        rss.append(_rss_mb())
        backend.append(peak)
    return Result(
        name="tenants_worker_memory",
        ratio=rss[-1] / rss[0],
        measurements={"tenants": len(schemas), "rounds": rounds,
                      "rss_mb_by_round": "/".join(f"{v:.1f}" for v in rss),
                      "backend_peak_mb_by_round": "/".join(f"{v:.1f}" for v in backend),
                      "round_s": "/".join(f"{v:.1f}" for v in seconds),
                      "evaluations_per_s": round(2 * len(schemas) * rounds / sum(seconds), 1)},
        ratio_means="resident memory after the last round ÷ after the first, one process running every tenant's "
                    "evaluate_due (flat ≈ 1)",
    )


def run(args: argparse.Namespace) -> list[Result]:
    from bench.support import drop_tenants, new_run_id
    from tenants.models import Tenant

    count = args.many_tenants or (QUICK_TENANTS if args.quick else DEFAULT_TENANTS)
    parts = set(args.tenant_parts.split(","))
    run_id = new_run_id()
    slugs: list[str] = []
    results = []
    try:
        slugs, create_s = _create(count, run_id)
        measurements = {"tenants_created": count, "create_median_s": statistics.median(create_s),
                        "create_max_s": max(create_s)}
        if "routing" in parts:
            hosts = [t.get_primary_domain().domain for t in Tenant.objects.filter(slug__in=slugs)]
            print(f"tenants: routing over {len(hosts)} hosts…", file=sys.stderr, flush=True)
            remembered_us, loader_us = _routing(hosts)
            measurements.update(routing_remembered_us=round(remembered_us, 1), routing_loader_us=round(loader_us, 1))
        if "migrate" in parts:
            schemas = Tenant.objects.exclude(schema_name="public").count()
            print(f"tenants: migrate_schemas over {schemas} schemas, standard then multiprocessing…",
                  file=sys.stderr, flush=True)
            standard_s = _migrate("standard")
            parallel_s = _migrate("multiprocessing")
            measurements.update(schemas_migrated=schemas, migrate_standard_s=standard_s,
                                migrate_multiprocessing_s=parallel_s,
                                migrate_standard_ms_per_schema=round(standard_s / schemas * 1000, 1))
            results.append(Result(
                name="tenants", ratio=parallel_s / standard_s, measurements=measurements,
                ratio_means="migrate_schemas over every tenant: multiprocessing executor s ÷ standard s "
                            "(lower is better)"))
        elif "routing" in parts:
            results.append(Result(
                name="tenants_routing", ratio=measurements["routing_remembered_us"] / measurements["routing_loader_us"],
                measurements=measurements,
                ratio_means="µs to route a request, remembered domain ÷ the domain query alone (lower is better)"))
        if "worker" in parts:
            results.append(_worker_memory(slugs, args.worker_rounds))
    finally:
        drop_tenants(slugs)
    return results
