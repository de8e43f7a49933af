"""The metrics refresher: reads each customer's facts with set-based SQL, scores them with
the pure functions of `customers.metrics`, and replaces `CustomerMetrics` in bulk.

Facts are read in ranges of customer ids (one grouped query per range, using the
(customer, timestamp) index), so memory stays bounded per query and the run can report
progress between ranges. All metric rows are written in one transaction at the end:
segments never see half of a refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
from django.db import connection, transaction

from customers.metrics import rfm
from customers.metrics.churn import PERIOD_DAYS, churn_by_period, period_starts
from customers.metrics.engagement import engagement_scores
from customers.metrics.ltv import arpu, customer_arpu, lifespan_in_periods, ltv_by_churn, ltv_by_lifespan
from customers.models import MetricsSettings, MetricsSummary

CHUNK_CUSTOMERS = 50_000
PERIODS_SHOWN = 12
Progress = Callable[[int, int, str], None]  # (done, total, message)

_FACTS_SQL = """
SELECT c.id, extract(epoch FROM COALESCE(c.signed_up_at, ev.first_ts))::float8, extract(epoch FROM ev.first_ts)::float8,
       extract(epoch FROM ev.last_ts)::float8,
       COALESCE(ev.events_30, 0), COALESCE(ev.days_30, 0), COALESCE(ev.orders, 0), COALESCE(ev.revenue, 0)::float8
FROM customers_customer c
LEFT JOIN (
    SELECT customer_id, min(timestamp) AS first_ts, max(timestamp) AS last_ts,
           count(*) FILTER (WHERE timestamp >= %(since_30)s) AS events_30,
           count(DISTINCT (timestamp AT TIME ZONE 'UTC')::date) FILTER (WHERE timestamp >= %(since_30)s) AS days_30,
           count(*) FILTER (WHERE name = %(event)s) AS orders,
           sum((properties ->> %(prop)s)::numeric)
               FILTER (WHERE name = %(event)s AND jsonb_typeof(properties -> %(prop)s) = 'number') AS revenue
    FROM customers_event
    WHERE customer_id >= %(low)s AND customer_id < %(high)s AND timestamp < %(now)s
    GROUP BY customer_id
) ev ON ev.customer_id = c.id
WHERE c.id >= %(low)s AND c.id < %(high)s
ORDER BY c.id
"""

# Only the columns this refresher owns: churn_risk, predicted_ltv and cluster come from
# the models that predict and cluster, and survive a refresh.
_OWN_COLUMNS = ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_segment", "arpu",
                "ltv", "engagement_score", "computed_at")


@dataclass
class Facts:
    ids: np.ndarray
    since: np.ndarray  # datetime64[us]: sign-up, else first event
    first_seen: np.ndarray
    last_seen: np.ndarray
    events_30: np.ndarray
    days_30: np.ndarray
    orders: np.ndarray
    revenue: np.ndarray


def metrics_settings_get() -> MetricsSettings:
    settings = MetricsSettings.objects.order_by("id").first()
    return settings or MetricsSettings.objects.create()


def _naive_utc(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(timezone.utc).replace(tzinfo=None), "us")


def _moments(epoch_seconds) -> np.ndarray:
    """Epoch seconds (None where missing) as datetime64[us] (NaT where missing)."""
    seconds = np.array(epoch_seconds, dtype=float)
    out = np.full(seconds.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    known = ~np.isnan(seconds)
    out[known] = np.round(seconds[known] * 1e6).astype(np.int64).astype("datetime64[us]")
    return out


def read_facts(*, settings: MetricsSettings, now: datetime, progress: Progress) -> Facts:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id), count(*) FROM customers_customer")
        low, high, total = cursor.fetchone()
    rows: list[tuple] = []
    if total:
        params = {"since_30": now - timedelta(days=30), "event": settings.revenue_event,
                  "prop": settings.revenue_property, "now": now}
        for start in range(low, high + 1, CHUNK_CUSTOMERS):
            with connection.cursor() as cursor:
                cursor.execute(_FACTS_SQL, {**params, "low": start, "high": start + CHUNK_CUSTOMERS})
                rows.extend(cursor.fetchall())
            progress(len(rows), total, "Reading customers' events")
    columns = list(zip(*rows)) if rows else [()] * 8
    return Facts(
        ids=np.array(columns[0], dtype=np.int64),
        since=_moments(columns[1]), first_seen=_moments(columns[2]), last_seen=_moments(columns[3]),
        events_30=np.array(columns[4], dtype=float), days_30=np.array(columns[5], dtype=float),
        orders=np.array(columns[6], dtype=float), revenue=np.array(columns[7], dtype=float),
    )


def _days_before(now: datetime, moments: np.ndarray) -> np.ndarray:
    """Days from each moment to `now` (float; NaN where the moment is missing)."""
    delta = (_naive_utc(now) - moments).astype("timedelta64[us]").astype(float)
    return np.where(np.isnat(moments), np.nan, delta / 86_400e6)


def _revenue_by_period(settings: MetricsSettings, starts: list[datetime]) -> list[float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.start, COALESCE(sum((e.properties ->> %(prop)s)::numeric), 0) "
            "FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS b(start, stop) "
            "LEFT JOIN customers_event e ON e.name = %(event)s AND e.timestamp >= b.start AND e.timestamp < b.stop "
            "AND jsonb_typeof(e.properties -> %(prop)s) = 'number' GROUP BY b.start ORDER BY b.start",
            {"prop": settings.revenue_property, "event": settings.revenue_event, "starts": starts[:-1],
             "ends": starts[1:]},
        )
        return [float(total) for _, total in cursor.fetchall()]


def _money(value) -> Decimal | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return Decimal(str(round(float(value), 2)))


def _write(facts: Facts, table: dict[str, np.ndarray], now: datetime) -> None:
    """COPY every customer's metrics into a temporary table, then one upsert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE metrics_in (customer_id bigint, recency_days float8, frequency int, "
            "monetary numeric, r_score smallint, f_score smallint, m_score smallint, rfm_segment text, "
            "arpu numeric, ltv numeric, engagement_score float8, computed_at timestamptz) ON COMMIT DROP")
        with cursor.copy("COPY metrics_in FROM STDIN") as copy:
            for i, customer_id in enumerate(facts.ids.tolist()):
                copy.write_row((
                    customer_id, _float(table["recency_days"][i]), int(facts.orders[i]), round(facts.revenue[i], 2),
                    _score(table["r"][i]), _score(table["f"][i]), _score(table["m"][i]), table["group"][i],
                    _round(table["arpu"][i]), _round(table["ltv"][i]), _float(table["engagement"][i]), now,
                ))
        updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in _OWN_COLUMNS)
        cursor.execute(
            f"INSERT INTO customers_customermetrics (customer_id, {', '.join(_OWN_COLUMNS)}, cluster) "
            f"SELECT customer_id, {', '.join(_OWN_COLUMNS)}, '' FROM metrics_in "
            # Customers deleted since the facts were read are skipped, not resurrected.
            "WHERE EXISTS (SELECT 1 FROM customers_customer c WHERE c.id = metrics_in.customer_id) "
            f"ORDER BY customer_id ON CONFLICT (customer_id) DO UPDATE SET {updates}")
        # ON COMMIT DROP covers a crash; this covers a caller's enclosing transaction.
        cursor.execute("DROP TABLE metrics_in")


def _float(value) -> float | None:
    return None if np.isnan(value) else float(value)


def _round(value) -> float | None:
    return None if np.isnan(value) else round(float(value), 2)


def _score(value) -> int | None:
    return int(value) or None


def score(facts: Facts, *, settings: MetricsSettings, now: datetime) -> dict[str, np.ndarray]:
    """Per-customer metrics from facts (pure apart from reading `settings`)."""
    recency = _days_before(now, facts.last_seen)
    active = ~np.isnan(recency)  # customers with at least one event are scored
    period_days = PERIOD_DAYS[settings.churn_period]
    r = rfm.quintile_scores(np.where(active, recency, np.nan), higher_is_better=False)
    f = rfm.quintile_scores(np.where(active, facts.orders, np.nan))
    m = rfm.quintile_scores(np.where(active, facts.revenue, np.nan))
    per_customer_arpu = customer_arpu(facts.revenue, _days_before(now, facts.since), period_days=period_days)
    lifespan = lifespan_in_periods(float(settings.expected_lifespan_months), period_days)
    return {
        "recency_days": np.round(recency, 2), "r": r, "f": f, "m": m, "group": rfm.groups(r, f, m),
        "arpu": per_customer_arpu, "ltv": per_customer_arpu * float(settings.gross_margin) * lifespan,
        "engagement": engagement_scores(facts.days_30, facts.events_30, recency),
    }


def _summary(facts: Facts, table: dict[str, np.ndarray], *, settings: MetricsSettings, now: datetime) -> dict:
    periods = churn_by_period(facts.first_seen, facts.last_seen, period=settings.churn_period,
                              inactivity_days=settings.churn_inactivity_days, now=now, count=PERIODS_SHOWN)
    revenue = _revenue_by_period(settings, period_starts(settings.churn_period, now=now, count=PERIODS_SHOWN))
    by_period = [{"period": p.start.date().isoformat(), "alive": p.alive, "churned": p.churned, "present": p.present,
                  "rate": p.rate, "revenue": round(amount, 2), "arpu": arpu(amount, p.present)}
                 for p, amount in zip(periods, revenue)]
    last = by_period[-1]
    margin = float(settings.gross_margin)
    lifespan = lifespan_in_periods(float(settings.expected_lifespan_months), PERIOD_DAYS[settings.churn_period])
    groups, counts = np.unique(table["group"][table["group"] != ""], return_counts=True)
    return {
        "customers": len(facts.ids), "paying_customers": int((facts.revenue > 0).sum()),
        "revenue": _money(facts.revenue.sum()), "arpu": _money(last["arpu"]), "churn_rate": last["rate"],
        "ltv_lifespan": _money(ltv_by_lifespan(last["arpu"], gross_margin=margin, lifespan_periods=lifespan)),
        "ltv_churn": _money(ltv_by_churn(last["arpu"], gross_margin=margin, churn_rate=last["rate"])),
        "churn_by_period": by_period,
        "rfm_groups": {group: int(count) for group, count in zip(groups.tolist(), counts.tolist())},
        "settings": {"revenue_event": settings.revenue_event, "revenue_property": settings.revenue_property,
                     "gross_margin": margin, "expected_lifespan_months": float(settings.expected_lifespan_months),
                     "churn_period": settings.churn_period, "churn_inactivity_days": settings.churn_inactivity_days},
    }


def metrics_refresh(*, now: datetime, progress: Progress | None = None) -> MetricsSummary:
    """Recompute every customer's metrics and the tenant's figures as of `now`. A rerun
    for the same `now` writes the same values."""
    tick = progress or (lambda done, total, message: None)
    settings = metrics_settings_get()
    facts = read_facts(settings=settings, now=now, progress=tick)
    table = score(facts, settings=settings, now=now)
    tick(len(facts.ids), len(facts.ids), "Saving metrics")
    with transaction.atomic():
        _write(facts, table, now)
        summary = MetricsSummary.objects.create(computed_at=now, **_summary(facts, table, settings=settings, now=now))
    return summary
