"""Helpers shared by the benchmark modules (import after django.setup())."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import secrets
import statistics
import string
import threading
import time

# Everything a benchmark creates is named from these, so leftovers can be found and removed.
SLUG_PREFIX = "bench-"
EMAIL_DOMAIN = "bench.example.com"
CLONE_SCHEMA_PREFIX = "bench_clone_"


def new_run_id() -> str:
    """Six lower-case letters/digits, so slugs like bench-<run>-<i> stay valid and unique."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(6))


def database_url() -> str:
    """The libpq URL of the bench database (the runner has pointed DATABASE_URL at it)."""
    return os.environ["DATABASE_URL"]


def other_sessions() -> int:
    """Client sessions on the bench database besides this one (another benchmark running)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def unapplied_migrations() -> int:
    """Migrations the public schema has not recorded yet (what migrate_schemas --shared would run)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    connection.set_schema_to_public()
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def admin_email_for(slug: str) -> str:
    return f"{slug}@{EMAIL_DOMAIN}"


def percentile(values: list[float], q: float) -> float:
    """Inclusive percentile (q in 0..100) with linear interpolation; fine for small samples."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[int(q) - 1]


# ------------------------------------------------------------------------------ CPU accounting
# Where a benchmark's CPU went (Linux /proc): the client, the server processes, PostgreSQL's
# backends, and the whole machine (other work included: the machine is shared).

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone or not readable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (every process, ours or not)."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    except OSError:
        return 0.0
    return (user + nice + system + irq + softirq + steal) / _TICK


def backend_pids(application_name: str) -> list[int]:
    """PostgreSQL backends of the processes started with PGAPPNAME=application_name (another
    benchmark may be using the bench database at the same time)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = %s", [application_name])
        return [pid for (pid,) in cursor.fetchall()]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def drop_schemas(names: list[str]) -> None:
    from django.db import connection

    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")


def drop_tenants(slugs: list[str]) -> None:
    """Remove bench tenants completely: schema, Tenant, Domain, membership and user rows."""
    from django.db import connection, transaction

    from tenants.models import Domain, Tenant, TenantMembership, User

    connection.set_schema_to_public()
    tenants = list(Tenant.objects.filter(slug__in=slugs))
    if not tenants:
        return
    with transaction.atomic():
        user_ids = list(
            TenantMembership.objects.filter(tenant__in=tenants).values_list("user_id", flat=True)
        )
        TenantMembership.objects.filter(tenant__in=tenants).delete()
        Domain.objects.filter(tenant__in=tenants).delete()
        # Only users that exist for the benchmark (their email says so) and belong nowhere else.
        User.objects.filter(
            id__in=user_ids, email__endswith="@" + EMAIL_DOMAIN, memberships__isnull=True
        ).delete()
        Tenant.objects.filter(id__in=[t.id for t in tenants]).delete()
    # One transaction a schema: dropping twenty at once (~280 relations each) outgrows the
    # server's lock table (max_locks_per_transaction × connections).
    drop_schemas([t.schema_name for t in tenants])


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def purge_leftovers() -> int:
    """Remove what an interrupted earlier run left behind; return how many objects went."""
    from django.db import connection

    from tenants.models import Tenant, User

    connection.set_schema_to_public()
    slugs = list(Tenant.objects.filter(slug__startswith=SLUG_PREFIX).values_list("slug", flat=True))
    drop_tenants(slugs)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s OR nspname LIKE %s",
            [_like_prefix(CLONE_SCHEMA_PREFIX), _like_prefix("t_" + SLUG_PREFIX.replace("-", "_"))],
        )
        schemas = [row[0] for row in cursor.fetchall()]
    drop_schemas(schemas)
    users, _ = User.objects.filter(email__endswith="@" + EMAIL_DOMAIN, memberships__isnull=True).delete()
    return len(slugs) + len(schemas) + users


# ------------------------------------------------------------------------------ kept data sets
# `python -m bench generator --keep-dataset` leaves its tenant in place as the data set other
# benchmarks (bench/segments.py) reuse. Its slug does not start with SLUG_PREFIX, so
# purge_leftovers() leaves it alone; one data set per size, a regeneration replaces it.
DATASET_SLUG_PREFIX = "benchdata-"


def dataset_slug(customers: int, events: int) -> str:
    return f"{DATASET_SLUG_PREFIX}{customers}-{events}"


def find_dataset(customers: int, events: int):
    """The kept data set tenant of that size, or None (public schema must be active)."""
    from tenants.models import Tenant

    return Tenant.objects.filter(slug=dataset_slug(customers, events)).first()


@contextlib.contextmanager
def kept_dataset(args, *, default: tuple[int, int], quick: tuple[int, int]):
    """Inside the generator's kept data set of the run's size (generated when missing),
    migrated, vacuumed and analysed (a fresh data set has no statistics: the first plans
    would be blind), its `now` pinned after the last event. Yields (tenant, now, note)."""
    from django_tenants.utils import schema_context

    from bench.segments import _dataset, _migrate_dataset, _pinned_now, _vacuum_analyze

    customers = args.customers or (quick[0] if args.quick else default[0])
    events = args.events if args.events is not None else (quick[1] if args.quick else default[1])
    tenant, generated_s = _dataset(customers, events)
    note = f"data set {tenant.slug}" + (f", generated in {generated_s:.0f} s" if generated_s else ", reused")
    with schema_context(tenant.schema_name):
        _migrate_dataset(tenant.schema_name)
        _vacuum_analyze()
        yield tenant, _pinned_now(), note


@dataclasses.dataclass(frozen=True)
class Answer:
    index: int  # of the request
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    latency_s: float  # from the request's scheduled time


def open_loop(port: int, host: str, requests: list[tuple], clients: int) -> tuple[list[Answer], list[str], float]:
    """Send each (scheduled offset s, method, path, headers, body) at its time to
    127.0.0.1:`port` from `clients` threads with keep-alive connections. Latency counts from
    the schedule, so a server that falls behind is charged for its queue (no coordinated
    omission). Returns the answers, the connection errors and the wall seconds."""
    answers: list[Answer] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.5
    position = {"next": 0}

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                index = position["next"]
                position["next"] += 1
            if index >= len(requests):
                break
            offset, method, path, headers, body = requests[index]
            wait = start + offset - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                connection.request(method, path, body=body, headers={"Host": host, **headers})
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            answer = Answer(index, response.status, response.headers, payload, time.perf_counter() - (start + offset))
            with lock:
                answers.append(answer)
        connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors, time.perf_counter() - start
