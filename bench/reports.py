"""Reports at scale, each beside a hand-written SQL statement of the same result, run
side by side in the same process.

Data set: the generator's `benchdata-<customers>-<events>` tenant, as bench/segments.py
(1M customers / 20M events by default, 10k / 200k with --quick), `now` pinned after its
last event. Ten dynamic segments (plans, countries, devices, consent, activity) are made
once and kept (`bench-report-*`).

1. segment_kpis: the KPI report of the ten segments and all customers, computed without
   the cache (`insights.reports.kpis._compute`), against a hand-written statement that
   computes the same per-group counts another way (per-customer facts first, then each
   customer fanned out to its segments with a lateral join); both give the same numbers
   (checked) — target ≤ 1.5. The cached answer's time is printed beside it.
"""

from __future__ import annotations

import argparse
import time
from statistics import median

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 1_000_000, 20_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
ROUNDS = 3

SEGMENTS = {
    "bench-report-pro": {"type": "trait", "field": "plan", "op": "eq", "value": "pro"},
    "bench-report-enterprise": {"type": "trait", "field": "plan", "op": "eq", "value": "enterprise"},
    "bench-report-free": {"type": "trait", "field": "plan", "op": "eq", "value": "free"},
    "bench-report-us": {"type": "trait", "field": "country", "op": "eq", "value": "US"},
    "bench-report-de": {"type": "trait", "field": "country", "op": "eq", "value": "DE"},
    "bench-report-mobile": {"type": "trait", "field": "device_type", "op": "eq", "value": "mobile"},
    "bench-report-email": {"type": "consent", "channel": "email", "granted": True},
    "bench-report-active": {"type": "event", "event": "*", "count": {"op": "gte", "value": 5},
                            "window": {"last": "30d"}},
    "bench-report-buyers": {"type": "event", "event": "purchase", "count": {"op": "gte", "value": 1},
                            "window": {"last": "90d"}},
    "bench-report-dormant": {"type": "trait", "field": "last_seen_at", "op": "more_than_ago", "value": "60d"},
}

# Hand-written: each customer's facts once, then fanned out to the groups it belongs to.
HAND_SQL = """
WITH answers AS (
    SELECT DISTINCT ON (r.customer_id) r.customer_id, r.score::float8 AS nps
    FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id AND s.key = 'nps'
    WHERE r.score IS NOT NULL AND r.responded_at < %(now)s
    ORDER BY r.customer_id, r.responded_at DESC, r.id DESC
), per AS (
    SELECT c.id,
           COALESCE(ev.revenue, 0) AS revenue,
           COALESCE(COALESCE(c.signed_up_at, c.created_at) < %(churn_start)s AND c.last_seen_at > %(alive_after)s,
                    false) AS alive,
           COALESCE(COALESCE(c.signed_up_at, c.created_at) < %(churn_start)s AND c.last_seen_at > %(alive_after)s
                    AND c.last_seen_at <= %(gone_by)s, false) AS churned,
           COALESCE(ev.converted, false) AS converted, answers.nps
    FROM customers_customer c
    LEFT JOIN (
        SELECT e.customer_id,
               sum((e.properties ->> %(prop)s)::numeric) FILTER (WHERE e.name = %(revenue)s
                   AND jsonb_typeof(e.properties -> %(prop)s) = 'number')::float8 AS revenue,
               bool_or(e.name = %(conversion)s) AS converted
        FROM customers_event e WHERE e.timestamp >= %(since_revenue)s AND e.timestamp < %(now)s
        GROUP BY e.customer_id
    ) ev ON ev.customer_id = c.id
    LEFT JOIN answers ON answers.customer_id = c.id
)
SELECT g.g, count(*), sum(per.revenue), count(*) FILTER (WHERE per.revenue > 0), count(*) FILTER (WHERE per.alive),
       count(*) FILTER (WHERE per.churned), count(*) FILTER (WHERE per.converted), count(per.nps)
FROM per CROSS JOIN LATERAL (
    SELECT m.segment_id AS g FROM segments_membership m
    WHERE m.customer_id = per.id AND m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= %(now)s
      AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
    UNION ALL SELECT 0
) g
GROUP BY g.g
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _segments(actor, now) -> list:
    from segments import engine
    from segments.models import Segment
    from segments.services import segment_create

    made = []
    for key, condition in SEGMENTS.items():
        segment = Segment.objects.filter(key=key).first()
        if segment is None:
            segment, _ = segment_create(actor=actor, key=key, name=key.removeprefix("bench-report-").title(), now=now,
                                        definition={"version": 1, "match": "all", "conditions": [condition]})
            engine.evaluate(segment_id=segment.pk, now=now, trigger="manual", clock=lambda: now)
        made.append(segment)
    return made


def _timed(work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return median(times), result


def _kpis(segments, now) -> Result:
    from django.db import connection

    from customers.models import MetricsSettings
    from insights.reports.kpis import _compute, _params, kpi_query, segment_kpis

    query = kpi_query(segments=[s.key for s in segments], conversion="subscription_upgraded")
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    params = _params(segments, [], query.conversion, settings, now)

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL, params)
            return {row[0]: row for row in cursor.fetchall()}

    report_s, report = _timed(lambda: _compute(query, now))
    hand_s, rows = _timed(hand)
    by_key = {s.pk: s.key for s in segments}
    for group, size, revenue, payers, alive, churned, converted, answered in rows.values():
        row = next(r for r in report.rows if r.key == by_key.get(group, "all"))
        if row.size != size or abs(row.revenue_90d - round(revenue or 0, 2)) > 0.01 or \
                row.paying_share != (round(payers / size, 4) if size else None) or \
                row.churn_rate != (round(churned / alive, 4) if alive else None) or \
                row.conversion != (round(converted / size, 4) if size else None):
            raise SystemExit(f"bench reports: the KPI report and the hand-written SQL disagree on {row.key}")
    segment_kpis(query=query, now=now)  # fill the cache
    cached_s, _ = _timed(lambda: segment_kpis(query=query, now=now))
    return Result("reports_segment_kpis", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "cached_s": round(cached_s, 4),
                   "segments": len(segments), "customers": report.rows[-1].size},
                  "KPI report of 10 segments + all customers / hand-written SQL of the same counts")


def run(args: argparse.Namespace) -> list[Result]:
    from django_tenants.utils import schema_context

    from bench.insights import _actor
    from bench.segments import _dataset, _migrate_dataset, _pinned_now, _vacuum_analyze

    customers = args.customers or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    events = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    tenant, generated_s = _dataset(customers, events)
    with schema_context(tenant.schema_name):
        _migrate_dataset(tenant.schema_name)
        _vacuum_analyze()
        now = _pinned_now()
        segments = _segments(_actor(tenant), now)
        result = _kpis(segments, now)
    return [Result(result.name, result.ratio, result.measurements, result.ratio_means, notes=(
        f"data set {tenant.slug}" + (f", generated in {generated_s:.0f} s" if generated_s else ", reused"),))]
