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

from audit.services import audit_record
from common.actors import Actor
from common.clock import Clock
from common.errors import Code, DomainError, Problem

from customers.metrics import rfm
from customers.metrics.churn import PERIOD_DAYS, churn_by_period, period_starts
from customers.metrics.engagement import engagement_scores
from customers.metrics.ltv import arpu, customer_arpu, lifespan_in_periods, ltv_by_churn, ltv_by_lifespan
from customers.models import MetricsSettings, MetricsSummary
from ops.models import TaskRun
from ops.services import task_run_create, task_run_finish, task_run_progress, task_run_start
from ops.tasking import send_to_tenant
from tenants.permissions import ensure_permitted

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


# ------------------------------------------------------------------ services around a run

MAX_LIFESPAN_MONTHS = 600
MAX_INACTIVITY_DAYS = 3650


def metrics_settings_update(*, actor: Actor, revenue_event: str, revenue_property: str, gross_margin: Decimal,
                            expected_lifespan_months: Decimal, churn_period: str,
                            churn_inactivity_days: int) -> MetricsSettings:
    """Change how metrics are computed (takes effect at the next refresh); audited."""
    ensure_permitted(actor, "settings.modify")
    problems = []
    if not revenue_event.strip() or len(revenue_event) > 200:
        problems.append(Problem("revenue_event", Code.INVALID_VALUE,
                                "Name the event that carries revenue (≤ 200 characters)."))
    if not revenue_property.strip() or len(revenue_property) > 200:
        problems.append(Problem("revenue_property", Code.INVALID_VALUE, "Name the property that holds the amount."))
    if not Decimal(0) < gross_margin <= Decimal(1):
        problems.append(Problem("gross_margin", Code.INVALID_RANGE, "Gross margin is a share: more than 0, at most 1."))
    if not Decimal(0) < expected_lifespan_months <= MAX_LIFESPAN_MONTHS:
        problems.append(Problem("expected_lifespan_months", Code.INVALID_RANGE,
                                f"Expected lifespan is more than 0 and at most {MAX_LIFESPAN_MONTHS} months."))
    if churn_period not in MetricsSettings.Period.values:
        problems.append(Problem("churn_period", Code.INVALID_VALUE, "Choose week, month or quarter."))
    if not 1 <= churn_inactivity_days <= MAX_INACTIVITY_DAYS:
        problems.append(Problem("churn_inactivity_days", Code.INVALID_RANGE,
                                f"Inactivity is 1 to {MAX_INACTIVITY_DAYS} days."))
    if problems:
        raise DomainError(problems=problems)
    with transaction.atomic():
        settings = metrics_settings_get()
        settings.revenue_event, settings.revenue_property = revenue_event.strip(), revenue_property.strip()
        settings.gross_margin, settings.expected_lifespan_months = gross_margin, expected_lifespan_months
        settings.churn_period, settings.churn_inactivity_days = churn_period, churn_inactivity_days
        settings.save()
        audit_record(actor=actor, action="metrics.settings_changed", target_type="customers.metricssettings",
                     target_id=settings.pk, target_label=str(settings),
                     changes={"gross_margin": str(gross_margin), "expected_lifespan_months": str(expected_lifespan_months),
                           "churn_period": churn_period, "churn_inactivity_days": churn_inactivity_days,
                           "revenue_event": settings.revenue_event, "revenue_property": settings.revenue_property})
    return settings


def metrics_refresh_request(*, actor: Actor, now: datetime) -> TaskRun:
    """Queue a refresh, or hand back the one already queued or running (two at once
    would only do the same work twice)."""
    ensure_permitted(actor, "data.import")
    pending = TaskRun.objects.filter(kind=TaskRun.Kind.METRICS_REFRESH,
                                     status__in=[TaskRun.Status.QUEUED, TaskRun.Status.RUNNING],
                                     created_at__gte=now - STALE_RUN).first()
    if pending:
        return pending
    return metrics_refresh_enqueue(created_by_id=getattr(actor, "user_id", None), now=now)


# A queued or running refresh older than this is presumed lost (the worker died) and
# no longer blocks a new one.
STALE_RUN = timedelta(hours=2)


def metrics_refresh_enqueue(*, created_by_id: int | None, now: datetime) -> TaskRun:
    run = task_run_create(kind=TaskRun.Kind.METRICS_REFRESH, label="Metrics refresh", created_by_id=created_by_id)
    schema = connection.schema_name
    transaction.on_commit(lambda: send_to_tenant("customers.refresh_metrics", schema_name=schema, run_id=run.pk,
                                                 now_iso=now.isoformat()))
    return run


def metrics_run(*, run_id: int, now: datetime, clock: Clock) -> None:
    """Run one queued refresh as of `now`, reporting progress on its TaskRun; `clock`
    stamps when it finished. A failure is recorded on the run and re-raised so Celery
    logs it."""
    task_run_start(run_id=run_id, now=now, message="Starting")
    try:
        summary = metrics_refresh(now=now, progress=lambda done, total, message: task_run_progress(
            run_id=run_id, done=done, total=total, message=message))
    except Exception as error:
        task_run_finish(run_id=run_id, now=clock(), error=f"The refresh failed: {error}")
        raise
    task_run_finish(run_id=run_id, now=clock(), message=f"{summary.customers:,} customers scored",
                    result={"summary_id": summary.pk, "customers": summary.customers})
