"""The metrics refresher's statements: facts, scores and the tenant's figures computed in
PostgreSQL, so no customer's row travels to Python and back.

1. `facts_fill` aggregates each customer's events into the session's temporary table
   `metrics_facts`, one range of customer ids per statement (progress between ranges; the
   (customer, timestamp) index serves each range).
2. `scores_write` scores every customer with window functions and upserts
   `customers_customermetrics` in one statement, which also counts the RFM groups it wrote.
3. `summary_figures` reads totals and churn per period from `metrics_facts`.

The formulas are those of the pure functions in `customers.metrics` (rfm, engagement, ltv,
churn), which stay the reference: tests/customers/test_metrics_sql.py checks these
statements against them on random data. Recency and tenure are taken as whole microseconds
divided by 86,400·10⁶ in float8, as numpy does, so ties and rounding agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings as settings_module
from django.db import connection

from customers.metrics import rfm
from customers.metrics.churn import PERIOD_DAYS
from customers.metrics.ltv import lifespan_in_periods
from customers.models import MetricsSettings

Progress = Callable[[int, int, str], None]  # (done, total, message)

# Per customer, from the events before `now`: first and last, events and active UTC days in
# the last 30 days, revenue events and their numeric amounts (strings are not revenue).
EVENT_FACTS_SQL = """
    SELECT customer_id, min(timestamp) AS first_ts, max(timestamp) AS last_ts,
           count(*) FILTER (WHERE timestamp >= %(since_30)s) AS events_30,
           count(DISTINCT (timestamp AT TIME ZONE 'UTC')::date) FILTER (WHERE timestamp >= %(since_30)s) AS days_30,
           count(*) FILTER (WHERE name = %(event)s) AS orders,
           sum((properties ->> %(prop)s)::numeric)
               FILTER (WHERE name = %(event)s AND jsonb_typeof(properties -> %(prop)s) = 'number') AS revenue
    FROM customers_event
    WHERE customer_id >= %(low)s AND customer_id < %(high)s AND timestamp < %(now)s
    GROUP BY customer_id
"""

CHUNK_CUSTOMERS = 50_000

_FACTS_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS metrics_facts (
    customer_id bigint PRIMARY KEY, since timestamptz, first_ts timestamptz, last_ts timestamptz,
    events_30 bigint NOT NULL, days_30 bigint NOT NULL, orders bigint NOT NULL, revenue numeric NOT NULL)
"""

_FACTS_FILL = f"""
INSERT INTO metrics_facts
SELECT c.id, COALESCE(c.signed_up_at, ev.first_ts), ev.first_ts, ev.last_ts, COALESCE(ev.events_30, 0),
       COALESCE(ev.days_30, 0), COALESCE(ev.orders, 0), COALESCE(ev.revenue, 0)
FROM customers_customer c
LEFT JOIN ({EVENT_FACTS_SQL}) ev ON ev.customer_id = c.id
WHERE c.id >= %(low)s AND c.id < %(high)s
"""

# Days from a moment to `now` as numpy computes them (see the module's docstring).
_DAYS_BEFORE = "(extract(epoch FROM %(now)s - {0}) * 1000000)::float8 / 86400000000"

# customers.metrics.engagement over `recency`, `days_30`, `fewer_events` (customers with
# fewer events in the last 30 days) and `everyone`; rint(x · 10) / 10 as numpy's round.
_ENGAGEMENT = ("round(100 * (0.5 * (least(days_30, 30)::float8 / 30) + 0.3 * (fewer_events::float8 / everyone)"
               " + 0.2 * exp(-recency / 14)) * 10) / 10")

# Scores as customers.metrics.rfm.quintile_scores: 1 + ⌊5 · (customers strictly worse) / n⌋
# over the customers with an event; rank() - 1 counts those strictly before in the order.
# Engagement's volume share is over everyone (customers without events have 0 events).
_SCORES_WRITE = f"""
WITH ranked AS (
    SELECT f.*, {_DAYS_BEFORE.format("f.last_ts")} AS recency, {_DAYS_BEFORE.format("f.since")} AS tenure,
           count(f.last_ts) OVER () AS active, count(*) OVER () AS everyone,
           rank() OVER (ORDER BY f.events_30) - 1 AS fewer_events,
           rank() OVER (PARTITION BY f.last_ts IS NULL ORDER BY f.last_ts) - 1 AS older,
           rank() OVER (PARTITION BY f.last_ts IS NULL ORDER BY f.orders) - 1 AS fewer_orders,
           rank() OVER (PARTITION BY f.last_ts IS NULL ORDER BY f.revenue) - 1 AS less_revenue
    FROM metrics_facts f
    WHERE EXISTS (SELECT 1 FROM customers_customer c WHERE c.id = f.customer_id)  -- deleted since: skipped
), scored AS (
    SELECT ranked.*, s.r, s.f, s.m, CASE WHEN tenure IS NOT NULL  -- GREATEST would skip the NULL
                THEN ranked.revenue::float8 / greatest(tenure / %(period_days)s, 1.0) END AS arpu
    FROM ranked
    CROSS JOIN LATERAL (
        SELECT CASE WHEN last_ts IS NOT NULL THEN 1 + 5 * older / active END AS r,
               CASE WHEN last_ts IS NOT NULL THEN 1 + 5 * fewer_orders / active END AS f,
               CASE WHEN last_ts IS NOT NULL THEN 1 + 5 * less_revenue / active END AS m
    ) s
), written AS (
    INSERT INTO customers_customermetrics (customer_id, recency_days, frequency, monetary, r_score, f_score,
                                           m_score, rfm_segment, arpu, ltv, engagement_score, computed_at, cluster)
    SELECT customer_id, round(recency * 100) / 100, orders, round(revenue, 2), r, f, m,
           COALESCE((%(grid)s::text[])[(r - 1) * 5 + (f + m + 1) / 2], ''),
           round(arpu::numeric, 2), round((arpu * %(margin)s * %(lifespan)s)::numeric, 2),
           {_ENGAGEMENT},
           %(now)s, ''
    FROM scored
    ORDER BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET
        recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency, monetary = EXCLUDED.monetary,
        r_score = EXCLUDED.r_score, f_score = EXCLUDED.f_score, m_score = EXCLUDED.m_score,
        rfm_segment = EXCLUDED.rfm_segment, arpu = EXCLUDED.arpu, ltv = EXCLUDED.ltv,
        engagement_score = EXCLUDED.engagement_score, computed_at = EXCLUDED.computed_at
    RETURNING rfm_segment
)
SELECT rfm_segment, count(*) FROM written WHERE rfm_segment <> '' GROUP BY rfm_segment ORDER BY rfm_segment
"""

_ENGAGEMENT_IN = f"""
CREATE TEMP TABLE engagement_in ON COMMIT DROP AS
SELECT customer_id, {_ENGAGEMENT} AS score
FROM (SELECT f.customer_id, f.days_30, {_DAYS_BEFORE.format("f.last_ts")} AS recency, count(*) OVER () AS everyone,
             rank() OVER (ORDER BY f.events_30) - 1 AS fewer_events
      FROM metrics_facts f) AS ranked
WHERE recency IS NOT NULL
"""

# A customer is alive from the first event until `inactivity` after the last one, when
# that moment is not after `now` (customers.metrics.churn).
_CHURN_SQL = """
WITH lives AS (
    SELECT first_ts, CASE WHEN last_ts + %(inactivity)s <= %(now)s THEN last_ts + %(inactivity)s END AS churned
    FROM metrics_facts WHERE first_ts IS NOT NULL
)
SELECT b.start,
       count(*) FILTER (WHERE first_ts < b.start AND (churned IS NULL OR churned > b.start)),
       count(*) FILTER (WHERE first_ts < b.start AND churned > b.start AND churned <= b.stop),
       count(*) FILTER (WHERE first_ts < b.stop AND (churned IS NULL OR churned > b.start))
FROM unnest(%(starts)s::timestamptz[], %(stops)s::timestamptz[]) AS b(start, stop)
LEFT JOIN lives ON true  -- no customers: zeros, not no rows
GROUP BY b.start ORDER BY b.start
"""


def _grid() -> list[str]:
    """The RFM grid as one array, indexed by (R − 1) · 5 + FM (1-based)."""
    return [rfm.group_of(r, fm) for r in range(1, 6) for fm in range(1, 6)]


def facts_fill(*, settings: MetricsSettings, now: datetime, progress: Progress) -> int:
    """(Re)fill this session's `metrics_facts` with every customer's facts as of `now`;
    returns the number of customers. Runs in the caller's transaction, if any."""
    with connection.cursor() as cursor:
        cursor.execute(_FACTS_TABLE)
        cursor.execute("TRUNCATE metrics_facts")
        cursor.execute("SELECT min(id), max(id), count(*) FROM customers_customer")
        low, high, total = cursor.fetchone()
        if not total:
            return 0
        params = {"since_30": now - timedelta(days=30), "event": settings.revenue_event,
                  "prop": settings.revenue_property, "now": now}
        done = 0
        for start in range(low, high + 1, CHUNK_CUSTOMERS):
            cursor.execute(_FACTS_FILL, {**params, "low": start, "high": start + CHUNK_CUSTOMERS})
            done += cursor.rowcount
            progress(done, total, "Reading customers' events")
        cursor.execute("ANALYZE metrics_facts")
    return done


def facts_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS metrics_facts")


def scores_write(*, settings: MetricsSettings, now: datetime) -> dict[str, int]:
    """Score every customer in `metrics_facts` and upsert the columns the refresher owns
    (churn_risk, predicted_ltv and cluster belong to the models and survive). Returns the
    number of customers per RFM group written. Call it inside a transaction."""
    period_days = PERIOD_DAYS[settings.churn_period]
    params = {"now": now, "period_days": period_days, "grid": _grid(), "margin": float(settings.gross_margin),
              "lifespan": lifespan_in_periods(float(settings.expected_lifespan_months), period_days)}
    with connection.cursor() as cursor:
        # Four window orderings of every customer: at the default 4 MB each sort spilled
        # ~100 MB to disk at 1M customers. Local to the caller's transaction.
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings_module.METRICS_WORK_MEM])
        cursor.execute(_SCORES_WRITE, params)
        return {group: count for group, count in cursor.fetchall()}


def engagement_fill(*, now: datetime) -> None:
    """The temporary table `engagement_in` (customer_id, score): the engagement score of each
    customer in `metrics_facts` with an event, dropped at the end of the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_ENGAGEMENT_IN, {"now": now})
        cursor.execute("ANALYZE engagement_in")


def totals() -> tuple[int, int, float]:
    """(customers, paying customers, revenue) over `metrics_facts`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE revenue > 0), COALESCE(sum(revenue), 0)::float8 "
                       "FROM metrics_facts")
        return cursor.fetchone()


def churn_counts(*, starts: list[datetime], inactivity_days: int, now: datetime) -> list[tuple[int, int, int]]:
    """(alive at the start, churned during, present during) per period between
    consecutive `starts`."""
    with connection.cursor() as cursor:
        cursor.execute(_CHURN_SQL, {"starts": starts[:-1], "stops": starts[1:], "now": now,
                                    "inactivity": timedelta(days=inactivity_days)})
        return [(alive, churned, present) for _, alive, churned, present in cursor.fetchall()]
