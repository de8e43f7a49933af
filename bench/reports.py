"""Reports at scale, each beside a hand-written SQL statement of the same result, run
side by side in the same process.

Data set: the generator's `benchdata-<customers>-<events>` tenant, as bench/segments.py
(1M customers / 20M events by default, 10k / 200k with --quick), `now` pinned after its
last event. Ten dynamic segments (plans, countries, devices, consent, activity) are made
once and kept (`bench-report-*`).

1. segment_kpis: the KPI report of the ten segments and all customers, computed without
   the cache (`insights.reports.kpis._compute`), against a hand-written statement of the
   same figures written another way (each customer joined to its facts, then fanned out to
   its segments with a lateral lookup); every KPI is checked equal but growth, which only
   the report reads (from the membership history) — target ≤ 1.5. The cached answer's
   time is printed beside it.
2. funnel: a 4-step funnel (login → project_created → feature_x_used → report_exported,
   30-day conversion window, the last 90 days) computed without the cache
   (`insights.reports.funnel._compute`: the compiler's lateral greedy chains), against a
   hand-written statement that finds each next step by a join and GROUP BY instead (hash
   joins over the steps' events, no lateral probes); every count and percentile checked
   equal — target ≤ 1.5; the cached answer's time beside it.
3. retention: 12 weekly cohorts by first `user_signed_up`, returning on any event
   (`insights.reports.retention._compute`: each return week once per customer, joined to
   the cohorts) against a hand-written statement that aggregates each customer's active
   weeks into an array and tests each of the 11 later weeks against it; every cell checked
   equal — target ≤ 1.5.
4. paths: depth 3 after `project_created` in the last 30 days
   (`insights.reports.paths._compute`: a lateral index scan per customer for their next
   events) against a hand-written statement that numbers every event of those customers
   in the window with a window function and keeps the three after the anchor; every link
   checked equal — target ≤ 1.5.
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

# Hand-written: each customer's facts once, then fanned out to the groups it belongs to
# with a lateral lookup of its memberships; the same figures as the report.
def hand_sql(features: int) -> str:
    adoption = "".join(f", bool_or(e.name = %(feature_{i})s AND e.timestamp >= %(since_adoption)s) AS a{i}"
                       for i in range(features))
    adopted = "".join(f", count(*) FILTER (WHERE ev.a{i})" for i in range(features))
    return f"""
WITH latest AS (
    SELECT DISTINCT ON (r.customer_id, s.key) r.customer_id, s.key, r.score::float8 AS score
    FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id
    WHERE s.key IN ('nps', 'csat') AND r.score IS NOT NULL AND r.responded_at < %(now)s
    ORDER BY r.customer_id, s.key, r.responded_at DESC, r.id DESC
), answers AS (
    SELECT customer_id, max(score) FILTER (WHERE key = 'nps') AS nps, max(score) FILTER (WHERE key = 'csat') AS csat
    FROM latest GROUP BY customer_id
), ev AS (
    SELECT e.customer_id,
           sum((e.properties ->> %(prop)s)::numeric) FILTER (WHERE e.name = %(revenue)s
               AND jsonb_typeof(e.properties -> %(prop)s) = 'number')::float8 AS revenue,
           bool_or(e.name = %(conversion)s) AS converted{adoption}
    FROM customers_event e WHERE e.timestamp >= %(since_revenue)s AND e.timestamp < %(now)s
    GROUP BY e.customer_id
)
SELECT g.g, count(*), COALESCE(sum(ev.revenue), 0), count(*) FILTER (WHERE ev.revenue > 0),
       count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) < %(churn_start)s
                          AND c.last_seen_at > %(alive_after)s),
       count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) < %(churn_start)s
                          AND c.last_seen_at > %(alive_after)s AND c.last_seen_at <= %(gone_by)s),
       avg(cm.engagement_score), count(a.nps), sum(a.nps), count(*) FILTER (WHERE a.nps >= 9),
       count(*) FILTER (WHERE a.nps <= 6), count(a.csat), sum(a.csat), count(*) FILTER (WHERE ev.converted),
       count(*) FILTER (WHERE c.signed_up_at <= %(signed_7)s), count(*) FILTER (WHERE c.signed_up_at <= %(signed_30)s),
       count(*) FILTER (WHERE c.signed_up_at <= %(signed_90)s),
       count(*) FILTER (WHERE c.signed_up_at <= %(signed_7)s AND c.last_seen_at >= c.signed_up_at + interval '7 days'),
       count(*) FILTER (WHERE c.signed_up_at <= %(signed_30)s AND c.last_seen_at >= c.signed_up_at + interval '30 days'),
       count(*) FILTER (WHERE c.signed_up_at <= %(signed_90)s AND c.last_seen_at >= c.signed_up_at + interval '90 days')
       {adopted}
FROM customers_customer c
LEFT JOIN ev ON ev.customer_id = c.id
LEFT JOIN customers_customermetrics cm ON cm.customer_id = c.id
LEFT JOIN answers a ON a.customer_id = c.id
CROSS JOIN LATERAL (
    SELECT m.segment_id AS g FROM segments_membership m
    WHERE m.customer_id = c.id AND m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= %(now)s
      AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
    UNION ALL SELECT 0
) g
GROUP BY g.g
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--explain-kpis", action="store_true",
                        help="print EXPLAIN (ANALYZE, BUFFERS) of the KPI report and the hand-written statement")


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


def report_features(query) -> list[str]:
    from insights.reports.inputs import busiest_events

    return list(query.features) or busiest_events()


def _kpis(segments, now, explain: bool = False) -> Result:
    from django.db import connection

    from customers.models import MetricsSettings
    from insights.reports.kpis import _compute, _params, _row, kpi_query, kpi_sql, segment_kpis

    query = kpi_query(segments=[s.key for s in segments], conversion="subscription_upgraded")
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    features = report_features(query)
    params = _params(segments, features, query.conversion, settings, now)

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(hand_sql(len(features)), params)
            return {row[0]: row for row in cursor.fetchall()}

    if explain:
        with connection.cursor() as cursor:
            for name, sql in (("report", kpi_sql(len(features))), ("hand", hand_sql(len(features)))):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                print(f"--- {name}\n" + "\n".join(row[0] for row in cursor.fetchall()), flush=True)
    report_s, report = _timed(lambda: _compute(query, now))
    hand_s, rows = _timed(hand)
    by_key = {s.pk: s.key for s in segments}
    for group, facts in rows.items():
        row = next(r for r in report.rows if r.key == by_key.get(group, "all"))
        # The sizes 30 and 90 days ago (None here) are read from history by the report alone.
        expected = _row(row.key, row.name, (*facts, None, None), rows[0], features, settings)
        expected.growth_30d, expected.growth_90d = row.growth_30d, row.growth_90d  # the hand statement has no history
        if expected != row:
            raise SystemExit(f"bench reports: the KPI report and the hand-written SQL disagree on {row.key}:\n"
                             f"{expected}\n{row}")
    segment_kpis(query=query, now=now)  # fill the cache
    cached_s, _ = _timed(lambda: segment_kpis(query=query, now=now))
    return Result("reports_segment_kpis", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "cached_s": round(cached_s, 4),
                   "segments": len(segments), "customers": report.rows[-1].size},
                  "KPI report of 10 segments + all customers / a hand-written statement of the same figures")


FUNNEL_STEPS = ["login", "project_created", "feature_x_used", "report_exported"]
FUNNEL_WITHIN, FUNNEL_PERIOD = "30d", "90d"


def funnel_hand_sql(steps: int) -> str:
    """Each start's chain by joins: the step's events in the period, joined to the chain so
    far on customer and time, the earliest kept per start (GROUP BY); then the best start
    per customer and the counts and percentiles, as the report computes them."""
    ctes = ["s1 AS (SELECT customer_id, timestamp AS t1 FROM customers_event WHERE name = %(h_e1)s "
            "AND timestamp >= %(h_start)s AND timestamp < %(h_now)s)"]
    for k in range(2, steps + 1):
        previous = ", ".join(f"c.t{i}" for i in range(1, k))
        ctes.append(
            f"s{k} AS (SELECT c.customer_id, {previous}, min(e.timestamp) AS t{k} FROM s{k - 1} c "
            f"LEFT JOIN customers_event e ON e.customer_id = c.customer_id AND e.name = %(h_e{k})s "
            f"AND e.timestamp > c.t{k - 1} AND e.timestamp <= c.t1 + %(h_within)s AND e.timestamp < %(h_now)s "
            f"GROUP BY c.customer_id, {previous})")
    times = ", ".join(f"t{i}" for i in range(1, steps + 1))
    level = " + ".join(["1", *(f"(t{i} IS NOT NULL)::int" for i in range(2, steps + 1))])
    counts = ", ".join(f"count(*) FILTER (WHERE level >= {i})" for i in range(1, steps + 1))
    gaps = ", ".join(f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM t{i} - t{i - 1}))"
                     for i in range(2, steps + 1))
    return (f"WITH {', '.join(ctes)}, best AS (SELECT DISTINCT ON (customer_id) customer_id, {level} AS level, "
            f"{times} FROM s{steps} ORDER BY customer_id, {level} DESC, t1) "
            f"SELECT {counts}, {gaps}, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP "
            f"(ORDER BY extract(epoch FROM t{steps} - t1)) FROM best")


def _funnel(now) -> Result:
    from datetime import timedelta

    from django.db import connection

    from insights.reports.funnel import _compute, funnel_query, funnel_report

    query = funnel_query(steps=[{"event": e} for e in FUNNEL_STEPS], within=FUNNEL_WITHIN,
                         window={"last": FUNNEL_PERIOD})
    params = {"h_now": now, "h_start": now - timedelta(days=int(FUNNEL_PERIOD[:-1])),
              "h_within": timedelta(days=int(FUNNEL_WITHIN[:-1])),
              **{f"h_e{i}": event for i, event in enumerate(FUNNEL_STEPS, start=1)}}

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(funnel_hand_sql(len(FUNNEL_STEPS)), params)
            return cursor.fetchone()

    report_s, report = _timed(lambda: _compute(query, now))
    hand_s, row = _timed(hand)
    k = len(FUNNEL_STEPS)
    steps = report.overall.steps
    shown = [*(s.reached for s in steps), *([s.median_seconds, s.p90_seconds] for s in steps[1:]),
             [report.overall.median_total_seconds, report.overall.p90_total_seconds]]
    expected = [*row[:k], *([None if p is None else round(float(p), 1) for p in pair] if pair else [None, None]
                            for pair in row[k:])]
    if shown != expected:
        raise SystemExit(f"bench reports: the funnel and the hand-written SQL disagree:\n{expected}\n{shown}")
    funnel_report(query=query, now=now)  # fill the cache
    cached_s, _ = _timed(lambda: funnel_report(query=query, now=now))
    return Result("reports_funnel", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "cached_s": round(cached_s, 4),
                   "step_1": steps[0].reached, "converted": steps[-1].reached},
                  "4-step funnel, 30-day window, last 90 days / a hand-written statement of the same counts")


RETENTION_HAND = """
WITH starts AS (
    SELECT customer_id, date_trunc('week', min(timestamp), 'UTC') AS cohort FROM customers_event
    WHERE name = 'user_signed_up' AND timestamp < %(now)s GROUP BY customer_id HAVING min(timestamp) >= %(first)s
), weeks AS (
    SELECT e.customer_id, array_agg(DISTINCT date_trunc('week', e.timestamp, 'UTC')) AS active
    FROM customers_event e WHERE e.customer_id IN (SELECT customer_id FROM starts)
      AND e.timestamp >= %(first)s AND e.timestamp < %(now)s
    GROUP BY e.customer_id
)
SELECT s.cohort, o.n, count(*) FROM starts s JOIN weeks w ON w.customer_id = s.customer_id
CROSS JOIN generate_series(1, %(later)s) AS o(n)
WHERE s.cohort + o.n * interval '1 week' = ANY (w.active)
GROUP BY s.cohort, o.n
UNION ALL
SELECT cohort, -1, count(*) FROM starts GROUP BY cohort
"""


def _retention(now) -> Result:
    from django.db import connection

    from insights.reports.periods import period_start, shift
    from insights.reports.retention import _compute, retention_query, retention_report

    query = retention_query(start_event="user_signed_up", return_event="*", period="week", cohorts=12)
    first = shift(period_start(now, "week"), "week", -11)

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(RETENTION_HAND, {"now": now, "first": first, "later": 11})
            return cursor.fetchall()

    report_s, report = _timed(lambda: _compute(query, now))
    hand_s, rows = _timed(hand)
    counts = {(cohort.date().isoformat(), n): count for cohort, n, count in rows}
    for cohort in report.groups[0].cohorts:
        expected = [counts.get((cohort.start, n), 0) for n in range(1, len(cohort.returned) + 1)]
        if counts.get((cohort.start, -1), 0) != cohort.size or expected != cohort.returned:
            raise SystemExit(f"bench reports: retention disagrees on cohort {cohort.start}: "
                             f"{cohort.size} {cohort.returned} vs {counts.get((cohort.start, -1))} {expected}")
    retention_report(query=query, now=now)
    cached_s, _ = _timed(lambda: retention_report(query=query, now=now))
    return Result("reports_retention", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "cached_s": round(cached_s, 4),
                   "customers": report.groups[0].customers},
                  "12 weekly cohorts returning on any event / a hand-written statement of the same cells")


PATHS_HAND = """
WITH anchors AS (
    SELECT customer_id, min(timestamp) AS t FROM customers_event
    WHERE name = %(event)s AND timestamp >= %(start)s AND timestamp < %(end)s GROUP BY customer_id
), numbered AS (
    SELECT e.customer_id, e.name, e.timestamp, e.id,
           row_number() OVER (PARTITION BY e.customer_id ORDER BY e.timestamp, e.id) AS n
    FROM customers_event e JOIN anchors a ON a.customer_id = e.customer_id
    WHERE e.timestamp >= a.t AND e.timestamp < %(end)s
), first_anchor AS (
    SELECT customer_id, min(n) AS n FROM numbered WHERE name = %(event)s GROUP BY customer_id
), following AS (
    SELECT x.customer_id, x.n - f.n AS step, x.name,
           lag(x.name) OVER (PARTITION BY x.customer_id ORDER BY x.n) AS previous
    FROM numbered x JOIN first_anchor f ON f.customer_id = x.customer_id
    WHERE x.n BETWEEN f.n AND f.n + %(depth)s
)
SELECT step, previous, name, count(*) FROM following WHERE step > 0 GROUP BY step, previous, name
"""


def _paths(now) -> Result:
    from collections import Counter
    from datetime import timedelta

    from django.db import connection

    from insights.reports.paths import _compute, paths_query, paths_report, paths_sql

    query = paths_query(event="project_created", window={"last": "30d"}, depth=3)
    params = {"event": "project_created", "start": now - timedelta(days=30), "end": now, "depth": 3}

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(PATHS_HAND, params)
            return Counter({(step, previous, name): n for step, previous, name, n in cursor.fetchall()})

    def raw():  # the report's own rows, before its top-8 folding, to compare with the hand counts
        sql, report_params = paths_sql(query, now)
        with connection.cursor() as cursor:
            cursor.execute(sql, report_params)
            return Counter({(step, previous, name): n for step, previous, name, n in cursor.fetchall() if step})

    report_s, report = _timed(lambda: _compute(query, now))
    hand_s, links = _timed(hand)
    if raw() != links:
        raise SystemExit("bench reports: the paths report and the hand-written SQL disagree")
    paths_report(query=query, now=now)
    cached_s, _ = _timed(lambda: paths_report(query=query, now=now))
    return Result("reports_paths", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "cached_s": round(cached_s, 4),
                   "customers": report.customers},
                  "paths 3 deep after project_created, 30 days / a hand-written window-function statement")


def run(args: argparse.Namespace) -> list[Result]:
    from bench.insights import _actor
    from bench.support import kept_dataset

    with kept_dataset(args, default=(DEFAULT_CUSTOMERS, DEFAULT_EVENTS), quick=(QUICK_CUSTOMERS, QUICK_EVENTS)) \
            as (tenant, now, note):
        segments = _segments(_actor(tenant), now)
        results = [_kpis(segments, now, explain=getattr(args, "explain_kpis", False)), _funnel(now),
                   _retention(now), _paths(now)]
    return [Result(r.name, r.ratio, r.measurements, r.ratio_means, notes=(note,)) for r in results]
