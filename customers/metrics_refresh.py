"""The metrics refresher and the services around a run: settings, queueing, progress.

The computation is set-based SQL (customers/metrics_store.py): facts per range of customer
ids into a temporary table (progress between ranges), then one statement scores every
customer and upserts `CustomerMetrics`, in the same transaction as the tenant's summary:
segments never see half of a refresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction

from audit.services import audit_record
from common.actors import Actor
from common.clock import Clock
from common.errors import Code, DomainError, Problem
from customers import metrics_store
from customers.metrics_store import Progress
from customers.metrics.churn import PERIOD_DAYS, period_starts
from customers.metrics.ltv import arpu, lifespan_in_periods, ltv_by_churn, ltv_by_lifespan
from customers.models import MetricsSettings, MetricsSummary
from customers.rollups import rollup_properties_ready, rollups_request
from ops.models import TaskRun
from ops.services import task_run_create, task_run_finish, task_run_progress, task_run_start
from ops.tasking import send_to_tenant
from tenants.permissions import ensure_permitted

PERIODS_SHOWN = 12


def metrics_settings_get() -> MetricsSettings:
    settings = MetricsSettings.objects.order_by("id").first()
    return settings or MetricsSettings.objects.create()


def _revenue_by_period(settings: MetricsSettings, starts: list[datetime]) -> list[float]:
    """Revenue per period. Periods are whole UTC days, so once the revenue property's
    daily values are back-filled (customers/rollups.py) they answer from those: a year of
    purchases was 13 s of JSON read from the events at 1M / 20M."""
    pair = (settings.revenue_event, settings.revenue_property)
    if pair in rollup_properties_ready():
        sql = ("SELECT b.start, COALESCE(sum(v.total), 0) "
               "FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS b(start, stop) "
               "LEFT JOIN customers_eventdayvalue v ON v.name = %(event)s AND v.property = %(prop)s "
               "AND v.day >= (b.start AT TIME ZONE 'UTC')::date AND v.day < (b.stop AT TIME ZONE 'UTC')::date "
               "GROUP BY b.start ORDER BY b.start")
    else:
        sql = ("SELECT b.start, COALESCE(sum((e.properties ->> %(prop)s)::numeric), 0) "
               "FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS b(start, stop) "
               "LEFT JOIN customers_event e ON e.name = %(event)s AND e.timestamp >= b.start AND e.timestamp < b.stop "
               "AND jsonb_typeof(e.properties -> %(prop)s) = 'number' GROUP BY b.start ORDER BY b.start")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"prop": settings.revenue_property, "event": settings.revenue_event,
                             "starts": starts[:-1], "ends": starts[1:]})
        return [float(total) for _, total in cursor.fetchall()]


def _money(value) -> Decimal | None:
    if value is None or value != value:  # NaN
        return None
    return Decimal(str(round(float(value), 2)))


def _summary(*, settings: MetricsSettings, groups: dict[str, int], now: datetime) -> dict:
    """The tenant's figures, from `metrics_facts` (filled by this refresh)."""
    customers, paying, revenue_total = metrics_store.totals()
    starts = period_starts(settings.churn_period, now=now, count=PERIODS_SHOWN)
    churn = metrics_store.churn_counts(starts=starts, inactivity_days=settings.churn_inactivity_days, now=now)
    revenue = _revenue_by_period(settings, starts)
    by_period = []
    for start, (alive, churned, present), amount in zip(starts, churn, revenue):
        by_period.append({"period": start.date().isoformat(), "alive": alive, "churned": churned,
                          "present": present, "rate": churned / alive if alive else None, "revenue": round(amount, 2),
                          "arpu": arpu(amount, present)})
    last = by_period[-1]
    margin = float(settings.gross_margin)
    lifespan = lifespan_in_periods(float(settings.expected_lifespan_months), PERIOD_DAYS[settings.churn_period])
    return {
        "customers": customers, "paying_customers": paying, "revenue": _money(revenue_total),
        "arpu": _money(last["arpu"]), "churn_rate": last["rate"],
        "ltv_lifespan": _money(ltv_by_lifespan(last["arpu"], gross_margin=margin, lifespan_periods=lifespan)),
        "ltv_churn": _money(ltv_by_churn(last["arpu"], gross_margin=margin, churn_rate=last["rate"])),
        "churn_by_period": by_period,
        "rfm_groups": groups,
        "settings": {"revenue_event": settings.revenue_event, "revenue_property": settings.revenue_property,
                     "gross_margin": margin, "expected_lifespan_months": float(settings.expected_lifespan_months),
                     "churn_period": settings.churn_period, "churn_inactivity_days": settings.churn_inactivity_days},
    }


def metrics_refresh(*, now: datetime, progress: Progress | None = None) -> MetricsSummary:
    """Recompute every customer's metrics and the tenant's figures as of `now`, in SQL
    (customers.metrics_store). A rerun for the same `now` writes the same values; the
    metric rows and the summary are written together, so readers never see half a refresh."""
    tick = progress or (lambda done, total, message: None)
    settings = metrics_settings_get()
    # Revenue per period reads the revenue property's daily values once they are back-filled.
    rollups_request(properties=[(settings.revenue_event, settings.revenue_property)], now=now)
    try:
        customers = metrics_store.facts_fill(settings=settings, now=now, progress=tick)
        tick(customers, customers, "Saving metrics")
        with transaction.atomic():
            groups = metrics_store.scores_write(settings=settings, now=now)
            summary = MetricsSummary.objects.create(computed_at=now, **_summary(settings=settings, groups=groups,
                                                                                 now=now))
    finally:
        metrics_store.facts_drop()
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
