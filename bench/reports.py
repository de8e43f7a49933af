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
5. trends: 12 weeks of every KPI for the ten segments and all customers
   (`insights.reports.trends._compute`: events folded per customer and week, then met
   with each week's members; all customers without a fan-out) against one hand-written
   GROUP BY over every (member, week) row; every count checked equal — target ≤ 1.5.
6. targeting: the STP board's facts for every live segment with two targets' overlap
   (`insights.reports.stp.segment_facts`) against a hand-written statement that computes each
   customer's revenue, reachability (a correlated EXISTS) and engagement once and fans
   them out over the memberships, plus a second for the sizes 30 days ago; size, ARPU,
   reachability, engagement and growth checked equal — target ≤ 1.5.
7. journey: the default five-stage journey of the largest segment
   (`insights.reports.journeys._compute`) against a hand-written statement that pivots
   each member's first time at every stage into columns of one GROUP BY; members, stage
   now, reached and median days checked equal — target ≤ 1.5. The persona gallery runs
   this once per persona card.
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
    from customers.selectors import busiest_events
    from insights.reports.inputs import DEFAULT_FEATURES

    return list(query.features) or busiest_events(limit=DEFAULT_FEATURES)


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


# Hand-written: every (member, period) row once — each segment's members at each period's
# end and every customer signed up by then — joined to the customer, its folded events of
# the period and its life, counted in one GROUP BY (no per-group CTEs, no UNION of parts).
def trends_hand_sql(features: int) -> str:
    flags = "".join(f", bool_or(e.name = %(feature_{i})s) AS a{i}" for i in range(features))
    adopted = "".join(f", count(*) FILTER (WHERE ev.a{i})" for i in range(features))
    retention = "".join(
        f", count(*) FILTER (WHERE c.signed_up_at >= st.start AND c.signed_up_at < st.stop"
        f" AND c.signed_up_at <= %(signed_{d})s)"
        f", count(*) FILTER (WHERE c.signed_up_at >= st.start AND c.signed_up_at < st.stop"
        f" AND c.signed_up_at <= %(signed_{d})s AND c.last_seen_at >= c.signed_up_at + interval '{d} days')"
        for d in (7, 30, 90))
    return f"""
WITH spans AS (
    SELECT s.start, s.stop FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS s(start, stop)
), stays AS (
    SELECT m.segment_id AS g, sp.start, sp.stop, m.customer_id FROM spans sp
    JOIN segments_membership m ON m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= sp.stop
        AND (m.exited_at IS NULL OR m.exited_at > sp.stop)
    UNION ALL
    SELECT 0, sp.start, sp.stop, c.id FROM spans sp JOIN customers_customer c
        ON COALESCE(c.signed_up_at, c.created_at) <= sp.stop
), ev AS (
    SELECT e.customer_id, date_trunc(%(unit)s::text, e.timestamp, 'UTC') AS start,
           sum(CASE WHEN e.name = %(revenue)s AND jsonb_typeof(e.properties -> %(prop)s) = 'number'
                    THEN (e.properties ->> %(prop)s)::numeric ELSE 0 END) AS revenue,
           bool_or(e.name = %(conversion)s) AS converted{flags}
    FROM customers_event e WHERE e.timestamp >= %(first)s AND e.timestamp < %(now)s GROUP BY 1, 2
)
SELECT st.g, st.start, count(*), count(ev.customer_id), COALESCE(sum(ev.revenue), 0),
       count(*) FILTER (WHERE ev.converted),
       count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) < st.start
                          AND c.last_seen_at > st.start - %(inactivity)s),
       count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) < st.start
                          AND c.last_seen_at > st.start - %(inactivity)s
                          AND c.last_seen_at <= st.stop - %(inactivity)s){retention}{adopted}
FROM stays st JOIN customers_customer c ON c.id = st.customer_id
LEFT JOIN ev ON ev.customer_id = st.customer_id AND ev.start = st.start
GROUP BY st.g, st.start
"""


TREND_COLUMNS = ("members", "active", "revenue", "converted", "alive", "churned", "eligible_7", "retained_7",
                 "eligible_30", "retained_30", "eligible_90", "retained_90")


def _trends(segments, now) -> Result:
    from datetime import timedelta

    from django.db import connection

    from customers.models import MetricsSettings
    from insights.reports.periods import period_start, shift
    from insights.reports.trends import FACTS, _compute, trend_query, trend_report, trend_sql

    query = trend_query(segments=[s.key for s in segments], interval="week", periods=12,
                        conversion="subscription_upgraded")
    features = report_features(query)
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    starts = [shift(period_start(now, "week"), "week", -n) for n in range(11, -1, -1)]
    params = {"segments": [s.pk for s in segments], "starts": starts, "ends": [*starts[1:], now], "first": starts[0],
              "now": now, "unit": "week", "revenue": settings.revenue_event, "prop": settings.revenue_property,
              "conversion": query.conversion, "inactivity": timedelta(days=settings.churn_inactivity_days),
              **{f"feature_{i}": name for i, name in enumerate(features)},
              **{f"signed_{d}": now - timedelta(days=d) for d in (7, 30, 90)}}

    def rows_of(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    report_s, report = _timed(lambda: _compute(query, now))
    hand_s, rows = _timed(lambda: rows_of(trends_hand_sql(len(features))))
    # The report's own counts (its statement's grid), against the hand statement's.
    adopted = [f"adopted_{i}" for i in range(len(features))]
    hand = {(g, start): dict(zip([*TREND_COLUMNS, *adopted], values)) for g, start, *values in rows}
    own = {(g, start): dict(zip([*FACTS, *adopted], values)) for g, start, *values in rows_of(trend_sql(len(features)))}
    for cell, counted in hand.items():
        mine = {name: own[cell][name] for name in counted}
        if any(float(mine[name]) != float(value) for name, value in counted.items()):
            raise SystemExit(f"bench reports: the trends report and the hand-written SQL disagree at {cell}:\n"
                             f"{counted}\n{mine}")
    trend_report(query=query, now=now)
    cached_s, _ = _timed(lambda: trend_report(query=query, now=now))
    return Result("reports_trends", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "cached_s": round(cached_s, 4),
                   "segments": len(segments), "periods": len(report.periods)},
                  "12 weeks of every KPI for 10 segments + all customers / one hand-written GROUP BY of the same counts")


# Hand-written: each customer's revenue, reachability (a correlated EXISTS over its
# consents) and engagement once, then fanned out over the open memberships; sizes 30 days
# ago in a second statement.
TARGETING_HAND = """
WITH per AS (
    SELECT c.id, COALESCE(r.revenue, 0) AS revenue, cm.engagement_score,
           EXISTS (SELECT 1 FROM customers_consent k WHERE k.customer_id = c.id AND k.granted
                   AND (k.channel IN ('in_app', 'ads') OR (k.channel = 'email' AND COALESCE(c.email, '') <> '')))
               AS reachable
    FROM customers_customer c
    LEFT JOIN (SELECT customer_id, sum((properties ->> %(prop)s)::numeric)::float8 AS revenue FROM customers_event
               WHERE name = %(revenue)s AND jsonb_typeof(properties -> %(prop)s) = 'number'
                 AND timestamp >= %(since)s AND timestamp < %(now)s GROUP BY customer_id) r ON r.customer_id = c.id
    LEFT JOIN customers_customermetrics cm ON cm.customer_id = c.id
)
SELECT s.key, count(*), sum(per.revenue), count(*) FILTER (WHERE per.reachable), avg(per.engagement_score)::float8
FROM segments_segment s JOIN segments_membership m ON m.segment_id = s.id AND m.exited_at IS NULL
JOIN per ON per.id = m.customer_id
WHERE s.status <> 'archived' AND s.kind <> 'snapshot' AND s.size > 0
GROUP BY s.key
"""
TARGETING_THEN = """
SELECT s.key, count(*) FROM segments_segment s JOIN segments_membership m ON m.segment_id = s.id
WHERE s.status <> 'archived' AND s.kind <> 'snapshot' AND s.size > 0
  AND m.entered_at <= %(then)s AND (m.exited_at IS NULL OR m.exited_at > %(then)s)
GROUP BY s.key
"""


def _targeting(segments, now) -> Result:
    from datetime import timedelta

    from django.db import connection

    from customers.models import MetricsSettings
    from insights.reports.stp import REVENUE_DAYS, segment_facts

    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    params = {"now": now, "since": now - timedelta(days=REVENUE_DAYS), "then": now - timedelta(days=30),
              "revenue": settings.revenue_event, "prop": settings.revenue_property}
    targets = [segments[0].key, segments[3].key]

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(TARGETING_HAND, params)
            facts = {key: row for key, *row in cursor.fetchall()}
            cursor.execute(TARGETING_THEN, params)
            return facts, dict(cursor.fetchall())

    report_s, rows = _timed(lambda: segment_facts(targets, now))
    hand_s, (facts, then) = _timed(hand)
    for row in rows:
        size, revenue, reachable, engagement = facts[row["key"]]
        expected = {"size": size, "arpu": round(revenue / size, 2) if size else None,
                    "reachability": round(reachable / size, 4) if size else None,
                    "engagement": None if engagement is None else round(engagement, 2),
                    "growth": round((size - then[row["key"]]) / then[row["key"]], 4) if then.get(row["key"]) else None}
        if any(row[name] != value for name, value in expected.items()):
            raise SystemExit(f"bench reports: the targeting facts and the hand-written SQL disagree on "
                             f"{row['key']}:\n{expected}\n{row}")
    return Result("reports_targeting", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "segments": len(rows)},
                  "STP board facts of every live segment (+ overlap with 2 targets) / hand-written statements")


# Hand-written: each member's first time at every stage as pivoted columns of one GROUP BY.
def journey_hand_sql(stages: int) -> str:
    firsts = ", ".join(f"min(e.timestamp) FILTER (WHERE e.name = ANY(%(stage_{i})s)) AS t{i}" for i in range(stages))
    current = " ".join(f"WHEN t{i} IS NOT NULL THEN {i}" for i in range(stages - 1, -1, -1))
    reached = ", ".join(f"count(t{i})" for i in range(stages))
    medians = ", ".join(f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t{i} - since) / 86400)"
                        for i in range(stages))
    return f"""
WITH members AS MATERIALIZED (
    SELECT m.customer_id FROM segments_membership m
    WHERE m.segment_id = %(segment)s AND m.entered_at <= %(now)s AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
), per AS (
    SELECT e.customer_id, {firsts} FROM customers_event e JOIN members m ON m.customer_id = e.customer_id
    WHERE e.timestamp < %(now)s AND e.name = ANY(%(names)s) GROUP BY e.customer_id
), placed AS (
    SELECT per.*, COALESCE(c.signed_up_at, c.created_at) AS since, CASE {current} END AS stage
    FROM per JOIN customers_customer c ON c.id = per.customer_id
)
SELECT (SELECT count(*) FROM members), array_agg(stage), {reached}, {medians} FROM placed
"""


def _journey(segments, now) -> Result:
    from collections import Counter

    from django.db import connection

    from insights.reports.journeys import DEFAULT_STAGES, _compute

    segment = max(segments, key=lambda s: s.size)
    stages = [dict(s) for s in DEFAULT_STAGES]
    params = {"segment": segment.pk, "now": now, "names": [n for s in stages for n in s["events"]],
              **{f"stage_{i}": s["events"] for i, s in enumerate(stages)}}

    def hand():
        with connection.cursor() as cursor:
            cursor.execute(journey_hand_sql(len(stages)), params)
            return cursor.fetchone()

    report_s, report = _timed(lambda: _compute(segment, stages, now))
    hand_s, row = _timed(hand)
    members, placed, reached, medians = row[0], Counter(row[1] or []), row[2:2 + len(stages)], row[2 + len(stages):]
    for i, stage in enumerate(report.stages):
        median = None if medians[i] is None else round(float(medians[i]), 1)
        if (stage.now, stage.reached, stage.median_days) != (placed.get(i, 0), reached[i], median):
            raise SystemExit(f"bench reports: the journey and the hand-written SQL disagree on {stage.name}: "
                             f"{(stage.now, stage.reached, stage.median_days)} vs {(placed.get(i, 0), reached[i], median)}")
    if report.members != members:
        raise SystemExit("bench reports: the journey's member count disagrees")
    return Result("reports_journey", round(report_s / hand_s, 2),
                  {"report_s": round(report_s, 3), "hand_sql_s": round(hand_s, 3), "members": members},
                  f"journey map of the largest segment ({segment.key}), 5 stages / a pivoted hand-written GROUP BY")


def run(args: argparse.Namespace) -> list[Result]:
    from bench.insights import _actor
    from bench.support import kept_dataset

    with kept_dataset(args, default=(DEFAULT_CUSTOMERS, DEFAULT_EVENTS), quick=(QUICK_CUSTOMERS, QUICK_EVENTS)) \
            as (tenant, now, note):
        segments = _segments(_actor(tenant), now)
        results = [_kpis(segments, now, explain=getattr(args, "explain_kpis", False)), _funnel(now),
                   _retention(now), _paths(now), _trends(segments, now), _targeting(segments, now),
                   _journey(segments, now)]
    return [Result(r.name, r.ratio, r.measurements, r.ratio_means, notes=(note,)) for r in results]
