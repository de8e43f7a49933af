"""The segment engine at scale, each measurement beside its baseline in the same process.

Data set: the generator's `benchdata-<customers>-<events>` tenant (1M customers / 20M
events by default, 10k / 200k with --quick), reused when present at that size, else
generated once and kept (`python -m bench generator --keep-dataset` makes the same). `now`
is pinned to the minute after the data set's last event, so every run asks the same
questions of the same facts. Before timing, the data set is vacuumed and analysed, and its
tables and indexes are read into the OS page cache (pg_prewarm 'read', or the files read
where the server lacks it; see _warm_cache).

1. metrics_refresh: `customers.metrics_refresh.metrics_refresh(now=…)` over every customer
   (it fills the CustomerMetrics the `metric` condition reads), against one hand-written
   statement computing the same per-customer figures (facts, ntile RFM scores and group,
   ARPU, LTV, engagement) and the churn and revenue per period, nothing written (issue 25 target:
   ≤ 1.3). Run when the metrics are not yet computed at `now`, or with --refresh-metrics.
2. compiled vs hand-written: for each definition below, `compile_rule(parse(definition))`
   against the SQL a good engineer would write for the same question; both fetch every id,
   alternating, `--repeat` times after one warm-up each; the id sets must be equal.
   ratio = median compiled s / median hand-written s (issue 6 target: ≤ 1.25).
3. evaluation: `segments.engine.evaluate` of a dynamic segment at `now` — the first
   evaluation (everyone enters: membership and outbox rows written; `--repeat` new
   segments, one per round) and re-evaluations that change nothing — against the bare
   compiled SELECT of the same definition, alternating round by round (issue 6 target for
   evaluate + diff vs evaluate alone: ≤ 1.5).
4. incremental: `evaluate(customer_ids=…)` for `--touched` random customers, for 1% of the
   customers and for the engine's limit in this tenant (`tenant_incremental_limit`), alternating
   with full re-evaluations (issue 6 target for 1% of customers: ≤ 0.05; above the limit
   the engine evaluates in full by design, reported as `incremental=0`).
5. naive loop: per customer, load its facts (`segments.selectors.facts.customer_facts`, one customer
   per call, as a per-customer loop would) and run the reference evaluator, on
   `--naive-sample` customers, extrapolated to the data set, against the compiled
   statement over everyone (issue 6 target: ≥ 1,000× faster). Reported for purchase_sum,
   the costliest compiled rule (`naive_loop`), and as the median over the definitions
   compared (`naive_loop_median`, each one's ratio in its note): the loop costs about the
   same for every definition (loading facts dominates), the compiled statements do not.

`--explain` prints EXPLAIN (ANALYZE, BUFFERS) of every compiled and hand-written statement.
Segments the benchmark creates are keyed `bench-…` and deleted afterwards (also when an
earlier run left them behind).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 1_000_000, 20_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
SEGMENT_PREFIX = "bench-"
EVALUATED = "purchase_sum"  # the definition evaluated through the engine (≈ 18% of customers: the 200k)

DAY = timedelta(days=1)
PARTS = ("compare", "preview", "evaluation", "naive")
ESTIMATE_ROUNDS = 20  # p95 of the estimate's time
STALE_LIMIT = 20_000  # largest segment whose re-evaluation is timed before ANALYZE (quadratic)


class _Bench:
    """The benchmark acts as a member who may read everything (it times, it does not check)."""

    tenant_id = 0

    @staticmethod
    def has(permission: str) -> bool:
        return True


_BENCH = _Bench()


def add_arguments(group: argparse._ArgumentGroup) -> None:
    # --customers/--events are the generator's options (one parser): the data set's size.
    group.add_argument("--repeat", type=int, default=3,
                       help="timed runs per statement after one warm-up (segments; default 3)")
    group.add_argument("--refresh-metrics", action="store_true",
                       help="run metrics_refresh even when the metrics are already computed at the pinned now")
    group.add_argument("--touched", type=int, default=500,
                       help="customers of the incremental evaluation (segments; default 500)")
    group.add_argument("--naive-sample", type=int, default=10_000,
                       help="customers of the per-customer Python loop, extrapolated (segments; 0 skips; default 10_000)")
    group.add_argument("--only", default="",
                       help="comma-separated definitions to compare (segments; default all)")
    group.add_argument("--parts", default=",".join(PARTS),
                       help=f"comma-separated parts to run (segments; default all: {','.join(PARTS)})")
    group.add_argument("--explain", action="store_true",
                       help="print EXPLAIN (ANALYZE, BUFFERS) of each compiled and hand-written statement")


# ------------------------------------------------------------------ definitions


def _event(name: str, op: str, value, last: str | None = None, negate: bool = False) -> dict:
    node = {"type": "event", "event": name, "count": {"op": op, "value": value}}
    if last:
        node["window"] = {"last": last}
    if negate:
        node["negate"] = True
    return node


def _root(*conditions, match: str = "all") -> dict:
    return {"version": 1, "match": match, "conditions": list(conditions)}


# name -> (definition, hand-written SQL, its parameters from now). The hand-written SQL is
# what one would write for the question knowing the schema and the data (amounts are
# numbers, built-in text columns are never NULL), letting the planner pick its joins.
def definitions(now: datetime) -> dict[str, tuple[dict, str, dict]]:
    d30, d90 = now - 30 * DAY, now - 90 * DAY
    return {
        "trait_filter": (
            _root({"type": "trait", "field": "country", "op": "in", "value": ["US", "CA"]},
                  {"type": "trait", "field": "plan", "op": "in", "value": ["pro", "team"]},
                  {"type": "trait", "field": "traits.seats", "op": "gte", "value": 5}),
            "SELECT id FROM customers_customer WHERE country = ANY(%(countries)s) AND plan = ANY(%(plans)s) "
            "AND (traits ->> 'seats')::numeric >= 5",
            {"countries": ["US", "CA"], "plans": ["pro", "team"]},
        ),
        "event_count_30d": (
            _root(_event("project_created", "gte", 3, "30d")),
            "SELECT customer_id FROM customers_event WHERE name = 'project_created' "
            "AND timestamp >= %(d30)s AND timestamp < %(now)s GROUP BY customer_id HAVING count(*) >= 3",
            {"d30": d30, "now": now},
        ),
        "did_x_never_y": (
            _root(_event("purchase", "gte", 1), _event("subscription_cancelled", "gte", 1, negate=True)),
            "SELECT c.id FROM customers_customer c WHERE EXISTS (SELECT 1 FROM customers_event e "
            "WHERE e.customer_id = c.id AND e.name = 'purchase' AND e.timestamp < %(now)s) "
            "AND NOT EXISTS (SELECT 1 FROM customers_event x WHERE x.customer_id = c.id "
            "AND x.name = 'subscription_cancelled' AND x.timestamp < %(now)s)",
            {"now": now},
        ),
        "never_in_30d": (
            _root(_event("login", "eq", 0, "30d")),
            "SELECT c.id FROM customers_customer c WHERE NOT EXISTS (SELECT 1 FROM customers_event e "
            "WHERE e.customer_id = c.id AND e.name = 'login' AND e.timestamp >= %(d30)s AND e.timestamp < %(now)s)",
            {"d30": d30, "now": now},
        ),
        "purchase_sum": (
            _root({"type": "event", "event": "purchase",
                   "aggregate": {"fn": "sum", "property": "amount", "op": "gte", "value": 2000}}),
            # `properties ? 'amount'` (every purchase has one) steers the planner off a full
            # scan of the customer_id index (17 s, against 7 s with it).
            "SELECT customer_id FROM customers_event WHERE name = 'purchase' AND timestamp < %(now)s "
            "AND properties ? 'amount' GROUP BY customer_id HAVING sum((properties -> 'amount')::numeric) >= 2000",
            {"now": now},
        ),
        "sequence_7d": (
            _root({"type": "sequence", "steps": [{"event": "project_created"}, {"event": "invite_sent"}],
                   "within": "7d", "window": {"last": "90d"}}),
            "SELECT DISTINCT a.customer_id FROM customers_event a WHERE a.name = 'project_created' "
            "AND a.timestamp >= %(d90)s AND a.timestamp < %(now)s AND EXISTS (SELECT 1 FROM customers_event b "
            "WHERE b.customer_id = a.customer_id AND b.name = 'invite_sent' AND b.timestamp > a.timestamp "
            "AND b.timestamp <= a.timestamp + interval '7 days' AND b.timestamp < %(now)s)",
            {"d90": d90, "now": now},
        ),
        "nested_any_not": (
            _root({"type": "trait", "field": "plan", "op": "in", "value": ["pro", "team", "enterprise"]},
                  {"match": "any", "conditions": [_event("login", "gte", 10, "30d"),
                                                  _event("feature_x_used", "gte", 5, "30d")]},
                  {"match": "any", "negate": True, "conditions": [
                      _event("support_ticket_opened", "gte", 1, "90d"),
                      {"type": "trait", "field": "country", "op": "eq", "value": "US"}]}),
            "SELECT c.id FROM customers_customer c WHERE c.plan = ANY(%(plans)s) AND c.country <> 'US' "
            "AND (c.id IN (SELECT customer_id FROM customers_event WHERE name = 'login' AND timestamp >= %(d30)s "
            "AND timestamp < %(now)s GROUP BY customer_id HAVING count(*) >= 10) "
            "OR c.id IN (SELECT customer_id FROM customers_event WHERE name = 'feature_x_used' "
            "AND timestamp >= %(d30)s AND timestamp < %(now)s GROUP BY customer_id HAVING count(*) >= 5)) "
            "AND NOT EXISTS (SELECT 1 FROM customers_event t WHERE t.customer_id = c.id "
            "AND t.name = 'support_ticket_opened' AND t.timestamp >= %(d90)s AND t.timestamp < %(now)s)",
            {"plans": ["pro", "team", "enterprise"], "d30": d30, "d90": d90, "now": now},
        ),
        "metric_rfm": (
            _root({"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["champions", "loyal"]}),
            "SELECT customer_id FROM customers_customermetrics WHERE rfm_segment = ANY(%(groups)s)",
            {"groups": ["champions", "loyal"]},
        ),
    }


# ------------------------------------------------------------------ helpers


def _ids(sql: str, params: dict) -> tuple[float, set[int]]:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    seconds = time.perf_counter() - started  # the statement and the transfer, not the set below
    return seconds, {row[0] for row in rows}


def _explain(label: str, sql: str, params: dict) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    print(f"--- {label}\n{plan}", flush=True)


FAST_ROUNDS_S = 5.0  # pairs faster than this (thing + baseline) get more rounds, up to MAX_ROUNDS
MAX_ROUNDS = 25


def _side_by_side(thing: Callable[[], float], baseline: Callable[[], float], repeat: int) -> tuple[list, list]:
    """One warm-up each, then alternating timed rounds (order flipped each round): `repeat`,
    or for fast statements as many as fit in about FAST_ROUNDS_S (at most MAX_ROUNDS): on
    this 2-core machine a median of three sub-second rounds moved by ±10–20% between runs
    (preview_sequence_7d 1.06 and 1.29, 2026-12-04)."""
    warm = thing() + baseline()
    rounds = max(repeat, min(MAX_ROUNDS, int(FAST_ROUNDS_S / max(warm, 1e-3))))
    things, baselines = [], []
    for round_ in range(rounds):
        if round_ % 2:
            baselines.append(baseline())
            things.append(thing())
        else:
            things.append(thing())
            baselines.append(baseline())
    return things, baselines


def _load() -> float:
    import os

    return round(os.getloadavg()[0], 2)


def _pinned_now() -> datetime:
    """The minute after the data set's last event."""
    from django.db import connection

    with connection.cursor() as cursor:
        # A loose index scan over (name, timestamp, customer_id): each name, then its latest event.
        cursor.execute(
            "WITH RECURSIVE names AS (SELECT min(name) AS n FROM customers_event UNION ALL "
            "SELECT (SELECT min(name) FROM customers_event WHERE name > names.n) FROM names WHERE names.n IS NOT NULL) "
            "SELECT max(m.t) FROM names CROSS JOIN LATERAL "
            "(SELECT max(timestamp) AS t FROM customers_event e WHERE e.name = names.n) m WHERE names.n IS NOT NULL")
        (last,) = cursor.fetchone()
    if last is None:
        raise SystemExit("bench segments: the data set has no events")
    last = last.astimezone(timezone.utc).replace(second=0, microsecond=0)
    return last + timedelta(minutes=1)


def _dataset(customers: int, events: int):
    """The kept data set tenant of that size, generated (and kept) when missing."""
    from django.db import connection
    from django.utils import timezone as dj_timezone
    from django_tenants.utils import schema_context

    from bench.support import admin_email_for, dataset_slug, find_dataset
    from demo.generator import generate
    from tenants.services import tenant_create

    connection.set_schema_to_public()
    tenant = find_dataset(customers, events)
    if tenant is not None:
        with schema_context(tenant.schema_name), connection.cursor() as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM customers_customer), "
                           "(SELECT count(*) FROM customers_event)")
            found = cursor.fetchone()
        if found == (customers, events):
            return tenant, 0.0
        raise SystemExit(f"bench segments: data set {tenant.slug} holds {found[0]} customers / {found[1]} events, "
                         f"not {customers} / {events}; regenerate it with "
                         f"`python -m bench generator --customers {customers} --events {events} --keep-dataset`")
    slug = dataset_slug(customers, events)
    print(f"bench segments: generating data set {slug} (kept for later runs)", flush=True)
    tenant = tenant_create(slug=slug, name=f"Bench data set {slug}", admin_email=admin_email_for(slug))
    started = time.perf_counter()
    with schema_context(tenant.schema_name):
        generate(customers=customers, events=events, now=dj_timezone.now())
    return tenant, time.perf_counter() - started


def _migrate_dataset(schema: str) -> None:
    """Apply tenant migrations the data set's schema lacks (e.g. a new index)."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        print(f"bench segments: migrating {schema}", flush=True)
        started = time.perf_counter()
        call_command("migrate_schemas", schema_name=schema, interactive=False, verbosity=0)
        connection.set_schema(schema)
        print(f"bench segments: migrated in {time.perf_counter() - started:.1f}s", flush=True)


def _ensure_rollups(now: datetime) -> None:
    """The rollups the definitions would ask for when saved (day rows and lifetimes of the
    events they count, daily values of the properties they aggregate), back-filled (each timed once,
    when a data set first needs it)."""
    from django.utils import timezone as django_timezone

    from customers.models import RollupEvent, RollupProperty
    from customers.rollups import rollup_backfill, rollups_request
    from segments.rules.parse import aggregated_properties, parse
    from segments.rules.shapes import rolled_up_events
    from segments.selectors.rules import rule_registry

    registry = rule_registry()
    groups = [parse(d, registry)[0] for d, _, _ in definitions(now).values()]
    rollups_request(events=set().union(*(rolled_up_events(g, now) for g in groups)),
                    properties=set().union(*map(aggregated_properties, groups)), now=django_timezone.now())
    pending = [("event", r) for r in RollupEvent.objects.filter(ready_at__isnull=True)]
    pending += [("property", r) for r in RollupProperty.objects.filter(ready_at__isnull=True)]
    for kind, rollup in pending:
        started = time.perf_counter()
        done = rollup_backfill(kind=kind, rollup_id=rollup.pk, clock=django_timezone.now)
        ratio = f", {done.days_per_event:.2f} day rows per event" if kind == "event" else ""
        print(f"bench segments: back-filled {rollup} in {time.perf_counter() - started:.1f}s{ratio}", flush=True)


def _vacuum_analyze() -> float:
    """A production table has been vacuumed (visibility map: index-only scans) and analysed;
    a freshly COPYed data set may not be yet. Cheap when it already is."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # The outbox too: each run deletes the segments it made, and an unvacuumed outbox
        # (8M dead rows after a few runs) made the next run's first-evaluation inserts
        # 2.7–3.0 s instead of 2.0–2.5 s.
        for table in ("customers_customer", "customers_event", "customers_customermetrics", "customers_consent",
                      "customers_surveyresponse", "segments_membership", "segments_membershipchange",
                      "customers_eventday", "customers_eventdayvalue", "customers_eventlifetime"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        # What the vacuum dirtied (hint bits, visibility map, an earlier run's deletes) is
        # written now, not by the checkpointer during the first timings.
        cursor.execute("CHECKPOINT")
    return time.perf_counter() - started


WARM_TABLES = ("customers_customer", "customers_event", "customers_customermetrics", "segments_membership",
               "segments_membershipchange", "customers_eventday", "customers_eventdayvalue")


def _warm_cache() -> float:
    """Read the data set's tables and their indexes into the operating system's page cache
    (pg_prewarm's 'read' mode: shared_buffers is left alone), so every ratio compares two
    warm sides. Without it a check of 10k random customers met whichever of their pages the
    cache did not hold yet: incremental_10000 ranged 1.0–10.3 s within one run (0.38 s warm)
    while the full evaluation beside it, reading the same pages every round, stayed warm.
    TRICKY: some machines here page out what has not been read for a minute (DAMON's
    pageout scheme: /sys/kernel/mm/damon/admin/kdamonds/0, min age 12 × 5 s), page cache
    included; only shared_buffers stays. Warming once at the start then leaves the
    incremental checks, run many minutes later, reading the event index from disk (0.66 s
    for 10k customers against 0.24–0.30 s warm, 2026-12-03), so they warm again first."""
    from django.db import connection

    started = time.perf_counter()
    # The tables' leaves (a partitioned table's months; a plain table is its own leaf) and
    # their indexes: only those have files.
    relations = ("SELECT i.oid FROM pg_class i WHERE i.oid = ANY(ARRAY("
                 "SELECT p.relid FROM unnest(%s::text[]) t, pg_partition_tree(to_regclass(t)) p WHERE p.isleaf "
                 "UNION ALL SELECT x.indexrelid FROM pg_index x WHERE x.indrelid = ANY(ARRAY("
                 "SELECT p.relid FROM unnest(%s::text[]) t, pg_partition_tree(to_regclass(t)) p WHERE p.isleaf))))")
    tables = [list(WARM_TABLES), list(WARM_TABLES)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_prewarm'")
        if cursor.fetchone():
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm SCHEMA public")
            cursor.execute(f"SELECT public.pg_prewarm(r.oid, 'read') FROM ({relations}) r", tables)
        else:  # the embedded server (`make bench`) ships without contrib; it runs on this machine
            cursor.execute(f"SELECT current_setting('data_directory'), array_agg(pg_relation_filepath(r.oid)) "
                           f"FROM ({relations}) r", tables)
            data_directory, paths = cursor.fetchone()
            _read_files(Path(data_directory), paths or [])
    return time.perf_counter() - started


def _read_files(data_directory: Path, paths: list[str]) -> None:
    """What pg_prewarm's 'read' mode does, from this process: every segment file of the
    relations read once, so the kernel's page cache holds them."""
    for path in paths:
        first = data_directory / path  # then its 1 GB segments: <relfilenode>.1, .2, …
        for segment in [first, *first.parent.glob(f"{first.name}.*")]:
            with segment.open("rb", buffering=0) as file:
                while file.read(8 << 20):
                    pass


def _drop_bench_segments() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id) FROM segments_segment WHERE key LIKE %s", [SEGMENT_PREFIX + "%"])
        (ids,) = cursor.fetchone()
        if not ids:
            return 0
        for table in ("segments_membershipchange", "segments_membership", "segments_segmentevaluation",
                      "segments_segmentsizesnapshot", "segments_segmentversion"):
            cursor.execute(f"DELETE FROM {table} WHERE segment_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM segments_segment WHERE id = ANY(%s)", [ids])
    return len(ids)


# ------------------------------------------------------------------ parts


# One statement a good engineer would write for the refresh's figures: every customer's facts
# in one grouped scan, ntile RFM scores (ties split arbitrarily: cheaper than the refresher's
# tie-sharing ranks), the grid's group, ARPU, LTV, engagement, and the churn and revenue per
# period (the summary's ARPU); aggregated so nothing travels to the client.
_HAND_METRICS = """
WITH ev AS (
    SELECT customer_id, min(timestamp) AS first_ts, max(timestamp) AS last_ts,
           count(*) FILTER (WHERE timestamp >= %(since_30)s) AS events_30,
           count(DISTINCT (timestamp AT TIME ZONE 'UTC')::date) FILTER (WHERE timestamp >= %(since_30)s) AS days_30,
           count(*) FILTER (WHERE name = %(event)s) AS orders,
           COALESCE(sum((properties ->> %(prop)s)::numeric)
               FILTER (WHERE name = %(event)s AND jsonb_typeof(properties -> %(prop)s) = 'number'), 0) AS revenue
    FROM customers_event WHERE timestamp < %(now)s GROUP BY customer_id
), f AS (
    SELECT c.id, COALESCE(c.signed_up_at, ev.first_ts) AS since, ev.*,
           extract(epoch FROM %(now)s - ev.last_ts)::float8 / 86400 AS recency
    FROM customers_customer c LEFT JOIN ev ON ev.customer_id = c.id
), s AS (
    SELECT f.*,
           CASE WHEN last_ts IS NOT NULL THEN ntile(5) OVER (PARTITION BY last_ts IS NULL ORDER BY last_ts) END AS r,
           CASE WHEN last_ts IS NOT NULL THEN ntile(5) OVER (PARTITION BY last_ts IS NULL ORDER BY orders) END AS fr,
           CASE WHEN last_ts IS NOT NULL THEN ntile(5) OVER (PARTITION BY last_ts IS NULL ORDER BY revenue) END AS m,
           percent_rank() OVER (ORDER BY COALESCE(events_30, 0)) AS volume,
           revenue::float8 / greatest(extract(epoch FROM %(now)s - since)::float8 / 86400 / %(period_days)s, 1)
               AS arpu
    FROM f
), scored AS (
    SELECT COALESCE((%(grid)s::text[])[(r - 1) * 5 + (fr + m + 1) / 2], '') AS grp, arpu,
           arpu * %(margin)s * %(lifespan)s AS ltv,
           100 * (0.5 * least(days_30, 30) / 30.0 + 0.3 * volume + 0.2 * exp(-recency / 14)) AS engagement
    FROM s
), churn AS (
    SELECT count(*) FILTER (WHERE first_ts < b.start AND (churned IS NULL OR churned > b.start)) AS alive
    FROM unnest(%(starts)s::timestamptz[]) AS b(start)
    CROSS JOIN (SELECT first_ts, CASE WHEN last_ts + %(inactivity)s <= %(now)s THEN last_ts + %(inactivity)s END
                AS churned FROM ev) AS lives
    GROUP BY b.start
), revenue AS (
    SELECT b.start, COALESCE(sum((e.properties ->> %(prop)s)::numeric), 0) AS amount
    FROM unnest(%(starts)s::timestamptz[], %(stops)s::timestamptz[]) AS b(start, stop)
    LEFT JOIN customers_event e ON e.name = %(event)s AND e.timestamp >= b.start AND e.timestamp < b.stop
     AND jsonb_typeof(e.properties -> %(prop)s) = 'number'
    GROUP BY b.start
)
SELECT (SELECT count(*) FROM scored), (SELECT count(DISTINCT grp) FROM scored), (SELECT sum(ltv) FROM scored),
       (SELECT avg(engagement) FROM scored), (SELECT sum(alive) FROM churn), (SELECT sum(amount) FROM revenue)
"""


def _metrics(now: datetime, force: bool) -> list[Result]:
    from django.db import connection

    from customers.metrics.churn import PERIOD_DAYS, period_starts
    from customers.metrics.ltv import lifespan_in_periods
    from customers.metrics.rfm import group_of
    from customers.metrics_refresh import PERIODS_SHOWN, metrics_refresh, metrics_settings_get

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE computed_at = %s), "
                       "(SELECT count(*) FROM customers_customer) FROM customers_customermetrics", [now])
        rows, at_now, customers = cursor.fetchone()
    if at_now == customers and rows == customers and not force:
        print(f"bench segments: metrics already computed at {now.isoformat()} (--refresh-metrics to time it)",
              flush=True)
        return []
    settings = metrics_settings_get()
    period_days = PERIOD_DAYS[settings.churn_period]
    params = {"since_30": now - 30 * DAY, "event": settings.revenue_event, "prop": settings.revenue_property,
              "now": now, "period_days": period_days, "margin": float(settings.gross_margin),
              "lifespan": lifespan_in_periods(float(settings.expected_lifespan_months), period_days),
              "grid": [group_of(r, fm) for r in range(1, 6) for fm in range(1, 6)],
              "starts": period_starts(settings.churn_period, now=now, count=PERIODS_SHOWN)[:-1],
              "stops": period_starts(settings.churn_period, now=now, count=PERIODS_SHOWN)[1:],
              "inactivity": settings.churn_inactivity_days * DAY}

    def hand() -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(_HAND_METRICS, params)
            cursor.fetchall()
        return time.perf_counter() - started

    hand_s = hand()
    load_before = _load()
    started = time.perf_counter()
    summary = metrics_refresh(now=now, progress=_phases(phases := {}))
    refresh_s = time.perf_counter() - started
    hand_after_s = hand()
    baseline = statistics.mean([hand_s, hand_after_s])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customermetrics WHERE rfm_segment <> ''")
        (scored,) = cursor.fetchone()
    return [Result(
        name="metrics_refresh",
        ratio=refresh_s / baseline,
        measurements={"customers": summary.customers, "scored": scored, "refresh_s": refresh_s,
                      "hand_statement_s": baseline, **phases, "load": load_before},
        ratio_means="metrics_refresh() s ÷ one hand-written statement computing the same figures s (mean of one "
                    "run before and one after; target ≤ 1.3)",
    )]


def _phases(phases: dict[str, float]):
    """A progress callback that records when reading the events ended (facts_s)."""
    started = time.perf_counter()

    def tick(done: int, total: int, message: str) -> None:
        if message == "Saving metrics":
            phases["facts_s"] = time.perf_counter() - started

    return tick


def _compare(now: datetime, repeat: int, only: set[str], explain: bool) -> tuple[list[Result], dict]:
    from segments.rules.compile import compile_rule
    from segments.rules.parse import parse
    from segments.selectors.rules import rule_registry, rule_rollups

    registry = rule_registry()
    results, compiled_times = [], {}
    for name, (definition, hand_sql, hand_params) in definitions(now).items():
        if only and name not in only:
            continue
        group, _warnings = parse(definition, registry)
        # As the engine compiles it: reading the daily rollups where they answer.
        sql = compile_rule(group, now=now, rollups=rule_rollups(group, now))
        events_only = compile_rule(group, now=now)
        _, compiled_ids = _ids(sql.text, sql.params)
        _, hand_ids = _ids(hand_sql, hand_params)
        if compiled_ids != hand_ids:
            raise RuntimeError(f"bench segments: {name}: compiled and hand-written SQL disagree "
                               f"({len(compiled_ids - hand_ids)} only compiled, {len(hand_ids - compiled_ids)} only hand)")
        if explain:
            _explain(f"{name} compiled", sql.text, sql.params)
            _explain(f"{name} hand-written", hand_sql, hand_params)
        load = _load()
        things, baselines = _side_by_side(lambda: _ids(sql.text, sql.params)[0],
                                          lambda: _ids(hand_sql, hand_params)[0], repeat)
        compiled_s, hand_s = statistics.median(things), statistics.median(baselines)
        compiled_times[name] = compiled_s
        measurements = {"members": len(compiled_ids), "compiled_s": compiled_s, "hand_s": hand_s,
                        "compiled_min_s": min(things), "hand_min_s": min(baselines), "load": load}
        if events_only.text != sql.text:  # the rollups answered part of it: the events-only statement too
            measurements["events_only_s"] = statistics.median(_ids(events_only.text, events_only.params)[0]
                                                              for _ in range(max(1, repeat)))
        results.append(Result(
            name=f"segments.{name}",
            ratio=compiled_s / hand_s,
            measurements=measurements,
            ratio_means="median compiled-rule SELECT s (rollups on) ÷ median hand-written SQL over the events s, "
                        "same id set (target ≤ 1.25; purchase_sum ≤ 0.35)",
        ))
        print(f"bench segments: {name}: compiled {compiled_s:.3f}s, hand {hand_s:.3f}s, "
              f"{len(compiled_ids)} members"
              + (f", events only {measurements['events_only_s']:.3f}s" if "events_only_s" in measurements else ""),
              flush=True)
    return results, compiled_times


def _preview(now: datetime, repeat: int, only: set[str]) -> list[Result]:
    """The builder's live preview (count + sample + impact in one statement) against a bare
    `SELECT count(*)` of the same compiled statement (target ≤ 1.2)."""
    from segments.selectors.preview import preview
    from segments.rules.compile import compile_rule
    from segments.rules.parse import parse
    from segments.selectors.rules import rule_registry

    registry = rule_registry()
    results = []
    for name, (definition, _hand_sql, _hand_params) in definitions(now).items():
        if only and name not in only:
            continue
        sql = compile_rule(parse(definition, registry)[0], now=now)

        def counted() -> float:
            return _timed_count(f"SELECT count(*) FROM ({sql.text}) matched", sql.params)

        def previewed() -> float:
            started = time.perf_counter()
            preview(actor=_BENCH, definition=definition, now=now)
            return time.perf_counter() - started

        load = _load()
        things, baselines = _side_by_side(previewed, counted, repeat)
        preview_s, count_s = statistics.median(things), statistics.median(baselines)
        results.append(Result(
            name=f"segments.preview_{name}", ratio=preview_s / count_s,
            measurements={"preview_s": preview_s, "count_s": count_s, "load": load},
            ratio_means="median queries.preview() s ÷ median SELECT count(*) of the compiled statement s "
                        "(target ≤ 1.2)",
        ))
        print(f"bench segments: preview {name}: {preview_s:.3f}s vs count {count_s:.3f}s", flush=True)
        results.append(_estimate(name, definition, now, exact_s=preview_s, repeat=repeat))
    return results


def _estimate(name: str, definition: dict, now: datetime, *, exact_s: float, repeat: int) -> Result:
    """The builder's first answer: preview(accuracy="estimate") from the hash-sample, its
    p95 over ESTIMATE_ROUNDS rounds (issue 25 target: ≤ 0.3 s at 1M / 20M) against the
    exact preview timed just before; and whether the exact count fell inside its margin."""
    from segments.selectors.preview import preview

    def estimated():
        started = time.perf_counter()
        result = preview(actor=_BENCH, definition=definition, now=now, accuracy="estimate")
        return time.perf_counter() - started, result

    estimated()  # warm-up
    times, result = [], None
    for _ in range(max(repeat, ESTIMATE_ROUNDS)):
        seconds, result = estimated()
        times.append(seconds)
    exact = preview(actor=_BENCH, definition=definition, now=now).count
    estimate = result.estimate
    p95 = sorted(times)[math.ceil(0.95 * len(times)) - 1]
    inside = abs(estimate.count - exact) <= estimate.margin
    print(f"bench segments: estimate {name}: p95 {p95:.3f}s, {estimate.count:,} ± {estimate.margin:,} "
          f"(exact {exact:,}{'' if inside else ', OUTSIDE the margin'})", flush=True)
    return Result(
        name=f"segments.estimate_{name}", ratio=statistics.median(times) / exact_s,
        measurements={"estimate_p95_s": p95, "estimate_median_s": statistics.median(times), "exact_s": exact_s,
                      "estimate": estimate.count, "margin": estimate.margin, "exact": exact,
                      "sampled": estimate.sampled, "inside_margin": inside},
        ratio_means="median preview(accuracy=estimate) s ÷ median exact preview s (target: estimate p95 ≤ 0.3 s)",
    )


def _timed_count(text: str, params) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        cursor.fetchone()
    return time.perf_counter() - started


def _evaluation(now: datetime, repeat: int, touched: int, customers: int) -> list[Result]:
    from django.db import connection

    from segments import engine
    from segments.models import Segment

    definition = definitions(now)[EVALUATED][0]
    key = f"{SEGMENT_PREFIX}{EVALUATED.replace('_', '-')}"

    def new_segment(round_: int) -> Segment:
        return Segment.objects.create(key=f"{key}-{round_}", name="Bench evaluation", definition=definition,
                                      definition_version=1)

    segments = [new_segment(round_) for round_ in range(repeat)]
    sql = engine.matching_sql(segments[0], now=now)

    def bare() -> float:
        return _ids(sql.text, sql.params)[0]

    load = _load()
    bare(), bare()  # warm
    # The first evaluation of a segment happens once, so each round evaluates a new one (the
    # earlier rounds' memberships stay, as other segments' would), alternating with the bare
    # SELECT so both see the same machine.
    firsts, bares = [], []
    for round_, segment in enumerate(segments):
        pair = [lambda: firsts.append(_run(segment, now)), lambda: bares.append(bare())]
        for step in (pair if round_ % 2 == 0 else pair[::-1]):
            step()
    segment, first = segments[-1], firsts[-1][1]
    first_s, select_s = statistics.median(s for s, _ in firsts), statistics.median(bares)
    stale_s = _run(segment, now)[0] if first.size <= STALE_LIMIT else None
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segments_membership")
    results = [Result(
        name="segments.evaluate_first",
        ratio=first_s / select_s,
        measurements={"customers": customers, "entered": first.entered, "size": first.size, "evaluate_s": first_s,
                      "select_s": select_s, "evaluate_min_s": min(s for s, _ in firsts), "select_min_s": min(bares),
                      "rounds": len(firsts), "load": load},
        ratio_means="median engine.evaluate s (first run of a new segment: every member enters, memberships + "
                    "outbox written) ÷ median bare compiled SELECT s, alternating (target ≤ 1.5)",
        notes=((f"re-evaluation right after the first, before segments_membership is analysed: {stale_s:.2f} s for "
                f"{first.size} members; the timings below are after ANALYZE" if stale_s is not None else
                f"re-evaluation before ANALYZE not timed at {first.size} members; the timings below are after "
                "ANALYZE segments_membership"),),
    )]

    load = _load()
    unchanged = []
    things, baselines = _side_by_side(lambda: _timed_unchanged(segment, now, unchanged), bare, repeat)
    results.append(Result(
        name="segments.evaluate_unchanged",
        ratio=statistics.median(things) / statistics.median(baselines),
        measurements={"size": first.size, "evaluate_s": statistics.median(things),
                      "select_s": statistics.median(baselines), "evaluate_min_s": min(things),
                      "select_min_s": min(baselines), "load": load},
        ratio_means="median engine.evaluate s (re-evaluation, nothing changes) ÷ median bare compiled SELECT s, "
                    "alternating (target ≤ 1.5)",
    ))
    results += _incremental(segment, now, repeat, [touched, customers // 100, engine.tenant_incremental_limit()],
                            customers)
    return results


def _run(segment, now: datetime, **kwargs):
    from django.utils import timezone as dj_timezone

    from segments import engine

    started = time.perf_counter()
    evaluation = engine.evaluate(segment_id=segment.pk, now=now, trigger="manual", clock=dj_timezone.now,
                                 **kwargs)
    seconds = time.perf_counter() - started
    if evaluation.status != "succeeded":
        raise RuntimeError(f"bench segments: evaluation {evaluation.status}: {evaluation.error}")
    return seconds, evaluation


def _timed_unchanged(segment, now: datetime, seen: list) -> float:
    seconds, evaluation = _run(segment, now)
    if evaluation.entered or evaluation.exited:
        raise RuntimeError("bench segments: a re-evaluation at the same now changed memberships")
    seen.append(evaluation)
    return seconds


def _incremental(segment, now: datetime, repeat: int, sizes: list[int], customers: int) -> list[Result]:
    """`evaluate(customer_ids=…)` of random customers against a full re-evaluation (nothing
    changes), alternating; above the engine's limit the "incremental" run is a full one and
    says so (`incremental=0`)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        low, high = cursor.fetchone()
    buffers_warm_s = _warm_buffers(segment, now, low, high)
    rng = random.Random(6)
    results = []
    for size in sorted(dict.fromkeys(size for size in sizes if 0 < size <= customers)):
        warm_s = _warm_cache()  # see _warm_cache: the full evaluations keep only the heap warm
        load = _load()
        checked = []

        def incremental() -> float:
            seconds, evaluation = _run(segment, now, customer_ids=rng.sample(range(low, high + 1), size))
            checked.append(evaluation.customers_checked or 0)
            return seconds

        things, baselines = _side_by_side(incremental, lambda: _run(segment, now)[0], repeat)
        inc_s, full_s = statistics.median(things), statistics.median(baselines)
        results.append(Result(
            name=f"segments.incremental_{size}",
            ratio=inc_s / full_s,
            measurements={"touched": size, "share": size / customers, "incremental_s": inc_s, "full_s": full_s,
                          "incremental_ms_per_customer": inc_s * 1000 / size, "incremental": int(checked[-1] == size),
                          "warm_s": round(warm_s, 1), "buffers_warm_s": buffers_warm_s, "load": load},
            ratio_means=f"median engine.evaluate(customer_ids=<{size} random>) s ÷ median full re-evaluation s "
                        "(nothing changes), alternating (issue 6 target at 1% of customers: ≤ 0.05)",
        ))
    return results


WARM_CHECK = 20_000  # customers per warm-up check


def _warm_buffers(segment, now: datetime, low: int, high: int) -> float | None:
    """On a server whose shared_buffers hold what incremental checks read (the event table
    and its (customer_id, name, timestamp) index), the segment's scoped statement over every
    customer id, WARM_CHECK at a time: the pages a server that has been checking ingest
    batches for a while holds. Seconds taken; None (nothing done) where they do not fit, as
    on a distribution's default 128 MB. Without it a sized server's checks met those pages
    only in the kernel's page cache, their first read of each page a copy there: 0.09 of a
    full evaluation on the bench server, 0.03 with the same relations in its buffers
    (2026-12-04). Sequential scans (full evaluations) read through a small ring and never
    fill the buffers themselves."""
    from django.db import connection

    from segments import engine

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('customers_event')) "
                       "+ (SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('event_customer_name_ts_idx')) "
                       "< 0.8 * pg_size_bytes(current_setting('shared_buffers'))")
        if not cursor.fetchone()[0]:
            return None
    started = time.perf_counter()
    for first in range(low, high + 1, WARM_CHECK):
        sql = engine.matching_sql(segment, now=now, only=list(range(first, min(first + WARM_CHECK, high + 1))))
        _ids(sql.text, sql.params)
    return round(time.perf_counter() - started, 1)


def _naive(now: datetime, sample: int, customers: int, compiled_times: dict[str, float],
           only: set[str]) -> list[Result]:
    """Per sampled customer: its facts loaded once (timed), then each definition's reference
    evaluation (timed per definition). A naive engine evaluating one segment loads every
    customer's facts for that segment, so its loop for a definition is facts + that
    definition's evaluations, extrapolated to all customers, against that definition's
    compiled SELECT (from the comparison above, else timed here)."""
    from django.db import connection

    from segments.selectors.facts import customer_facts
    from segments.rules import reference
    from segments.rules.compile import compile_rule
    from segments.rules.parse import parse
    from segments.selectors.rules import rule_registry

    registry = rule_registry()
    groups = {name: parse(definition, registry)[0] for name, (definition, _, _) in definitions(now).items()
              if not only or name in only or name == EVALUATED}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM customers_customer ORDER BY random() LIMIT %s", [sample])
        ids = [row[0] for row in cursor.fetchall()]
    load = _load()
    facts_s, evaluate_s, members = 0.0, dict.fromkeys(groups, 0.0), {name: set() for name in groups}
    for customer_id in ids:
        started = time.perf_counter()
        facts = customer_facts(customer_ids=[customer_id], now=now)[customer_id]
        facts_s += time.perf_counter() - started
        for name, group in groups.items():
            started = time.perf_counter()
            if reference.evaluate(group, facts, now=now):
                members[name].add(customer_id)
            evaluate_s[name] += time.perf_counter() - started
    ratios = {}
    for name, group in groups.items():
        on_sample = compile_rule(group, now=now, only=ids)  # the incremental form: the same rule on those ids
        if _ids(on_sample.text, on_sample.params)[1] != members[name]:
            raise RuntimeError(f"bench segments: {name}: the per-customer loop and the compiled SQL disagree on the "
                               "sample")
        if name not in compiled_times:
            sql = compile_rule(group, now=now)
            compiled_times[name] = statistics.median(_ids(sql.text, sql.params)[0] for _ in range(3))
        ratios[name] = (facts_s + evaluate_s[name]) * customers / len(ids) / compiled_times[name]
    loop_s = facts_s + evaluate_s[EVALUATED]
    per_definition = ", ".join(f"{name} {ratio:,.0f}× (compiled {compiled_times[name]:.3f} s)"
                               for name, ratio in sorted(ratios.items(), key=lambda item: item[1]))
    return [
        Result(
            name="segments.naive_loop",
            ratio=ratios[EVALUATED],
            measurements={"sample": len(ids), "sample_members": len(members[EVALUATED]), "loop_s": loop_s,
                          "facts_s": facts_s, "extrapolated_s": loop_s * customers / len(ids),
                          "compiled_s": compiled_times[EVALUATED], "load": load},
            ratio_means=f"per-customer Python loop ({EVALUATED}, the costliest compiled rule: facts + reference "
                        "evaluator) extrapolated to all customers s ÷ its compiled SELECT s (higher is better, "
                        "target ≥ 1000)",
        ),
        Result(
            name="segments.naive_loop_median",
            ratio=statistics.median(ratios.values()),
            measurements={"definitions": len(ratios), "min_ratio": min(ratios.values()),
                          "max_ratio": max(ratios.values()), "facts_ms_per_customer": facts_s * 1000 / len(ids),
                          "load": load},
            ratio_means="median over the definitions of (per-customer loop: facts + that definition's reference "
                        "evaluation, extrapolated) s ÷ that definition's compiled SELECT s (higher is better, "
                        "target ≥ 1000)",
            notes=(f"per definition: {per_definition}",),
        ),
    ]


# ------------------------------------------------------------------ run


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from django_tenants.utils import schema_context

    customers = args.customers or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    events = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    repeat = max(1, getattr(args, "repeat", 3))
    tenant, generated_s = _dataset(customers, events)
    results: list[Result] = []
    with schema_context(tenant.schema_name):
        _migrate_dataset(tenant.schema_name)
        left = _drop_bench_segments()
        if left:
            print(f"bench segments: removed {left} segment(s) an earlier run left behind", flush=True)
        now = _pinned_now()
        _ensure_rollups(now)
        vacuum_s = _vacuum_analyze()
        warm_s = _warm_cache()
        print(f"bench segments: data set {tenant.slug}, now={now.isoformat()}, vacuum/analyze {vacuum_s:.1f}s, "
              f"page cache warmed in {warm_s:.1f}s", flush=True)
        results += _metrics(now, getattr(args, "refresh_metrics", False))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_customermetrics")
        only = {name for name in getattr(args, "only", "").split(",") if name}
        parts = set(getattr(args, "parts", ",".join(PARTS)).split(","))
        compiled_times: dict[str, float] = {}
        if "compare" in parts:
            compared, compiled_times = _compare(now, repeat, only, getattr(args, "explain", False))
            results += compared
        if "preview" in parts:
            results += _preview(now, repeat, only)
        if "evaluation" in parts:
            try:
                results += _evaluation(now, repeat, getattr(args, "touched", 500), customers)
            finally:
                _drop_bench_segments()
        sample = min(getattr(args, "naive_sample", 10_000), customers)
        if sample > 0 and "naive" in parts:
            results += _naive(now, sample, customers, compiled_times, only)
    notes = [f"data set {tenant.slug} (now pinned at {now.isoformat()})"
             + (f", generated in this run in {generated_s:.0f} s" if generated_s else ", reused")]
    first = results[0]
    results[0] = Result(name=first.name, ratio=first.ratio, measurements=first.measurements,
                        ratio_means=first.ratio_means, notes=(*first.notes, *notes))
    return results
