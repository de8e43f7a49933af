"""The refresher's SQL (customers/metrics_store.py) against the pure functions of
`customers.metrics`, which define the formulas: on random workspaces — ties, customers
without events, sign-ups before, after and without events, string amounts, events after
`now` — every stored column and every summary figure agrees with numpy on facts read
independently here."""

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from django.db import connection

from customers.metrics import rfm
from customers.metrics.churn import PERIOD_DAYS, churn_by_period
from customers.metrics.engagement import engagement_scores
from customers.metrics.ltv import customer_arpu, lifespan_in_periods
from customers.metrics_refresh import metrics_refresh, metrics_settings_get
from customers.models import Customer, CustomerMetrics, Event, RollupProperty
from customers.rollups import rollup_backfill

NOW = datetime(2026, 11, 15, 12, 30, 15, 123456, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _world(seed: int, customers: int = 160) -> None:
    rng = random.Random(seed)
    people = Customer.objects.bulk_create([
        Customer(external_id=f"c{i}", signed_up_at=rng.choice([
            None, NOW - timedelta(days=rng.randint(0, 400)), NOW + timedelta(days=3),
            NOW - timedelta(seconds=rng.randint(0, 10**8))]))
        for i in range(customers)])
    # A few shared moments make ties in recency; whole days make ties in activity.
    shared = [NOW - timedelta(days=d) for d in (1, 2, 5, 40)]
    events = []
    for person in people:
        for n in range(rng.choice([0, 0, 1, 2, 5, 12])):
            when = rng.choice(shared) if rng.random() < 0.3 else NOW - timedelta(
                seconds=rng.randint(-3 * 86400, 200 * 86400), microseconds=rng.randint(0, 999_999))
            if rng.random() < 0.4:
                amount = rng.choice([rng.randint(1, 500), round(rng.uniform(0, 99), 2), "12", 0, 19.995])
                events.append(Event(customer=person, name="purchase", timestamp=when, properties={"amount": amount},
                                    message_id=f"{person.pk}-{n}"))
            else:
                events.append(Event(customer=person, name=rng.choice(["login", "page_viewed"]), timestamp=when,
                                    properties={}, message_id=f"{person.pk}-{n}"))
    # Active on each of the 31 UTC dates the last 30 days touch: active days are capped at 30.
    days = [NOW - timedelta(days=30 - d, minutes=-1) for d in range(30)] + [NOW - timedelta(minutes=1)]
    events += [Event(customer=people[0], name="login", timestamp=when, properties={}, message_id=f"daily-{when}")
               for when in days]
    Event.objects.bulk_create(events)


def _seconds(value) -> float:
    return np.nan if value is None else (value - EPOCH) / timedelta(microseconds=1) / 1e6


def _reference(settings, now):
    """Facts read row by row here, scored by the pure functions."""
    since_30 = now - timedelta(days=30)
    rows = []
    for customer in Customer.objects.order_by("id"):
        events = [e for e in customer.events.all() if e.timestamp < now]
        paid = [e for e in events if e.name == settings.revenue_event]
        amounts = [e.properties.get(settings.revenue_property) for e in paid]
        first = min((e.timestamp for e in events), default=None)
        rows.append((customer.pk, customer.signed_up_at or first, first, max((e.timestamp for e in events), default=None),
                     sum(e.timestamp >= since_30 for e in events),
                     len({e.timestamp.astimezone(timezone.utc).date() for e in events if e.timestamp >= since_30}),
                     len(paid), float(sum(a for a in amounts if isinstance(a, (int, float)) and not isinstance(a, bool)))))
    ids, since, first, last, events_30, days_30, orders, revenue = zip(*rows)

    def moments(values):
        return np.array([np.datetime64("NaT") if v is None else np.datetime64(int(round(_seconds(v) * 1e6)), "us")
                         for v in values], dtype="datetime64[us]")

    def days_before(values):
        moments_ = moments(values)
        delta = (np.datetime64(int(round(_seconds(now) * 1e6)), "us") - moments_).astype(float)
        return np.where(np.isnat(moments_), np.nan, delta / 86_400e6)

    recency = days_before(last)
    active = ~np.isnan(recency)
    orders, revenue = np.array(orders, dtype=float), np.array(revenue)
    r = rfm.quintile_scores(np.where(active, recency, np.nan), higher_is_better=False)
    f = rfm.quintile_scores(np.where(active, orders, np.nan))
    m = rfm.quintile_scores(np.where(active, revenue, np.nan))
    period_days = PERIOD_DAYS[settings.churn_period]
    arpu = customer_arpu(revenue, days_before(since), period_days=period_days)
    lifespan = lifespan_in_periods(float(settings.expected_lifespan_months), period_days)
    per_customer = {
        customer: {"recency": recency[i], "frequency": int(orders[i]), "monetary": revenue[i], "r": int(r[i]),
                   "f": int(f[i]), "m": int(m[i]), "group": rfm.groups(r, f, m)[i], "arpu": arpu[i],
                   "ltv": arpu[i] * float(settings.gross_margin) * lifespan,
                   "engagement": engagement_scores(np.array(days_30), np.array(events_30, dtype=float), recency)[i]}
        for i, customer in enumerate(ids)}
    churn = churn_by_period(moments(first), moments(last), period=settings.churn_period,
                            inactivity_days=settings.churn_inactivity_days, now=now, count=12)
    return per_customer, churn, revenue


def _close(stored, expected, places):
    if np.isnan(expected):
        return stored is None
    return stored is not None and abs(float(stored) - expected) <= 10 ** -places / 2 + 1e-9


@pytest.mark.parametrize("seed, period", [(1, "month"), (2, "week"), (3, "quarter")])
def test_stored_metrics_equal_the_reference(in_tenant, seed, period):
    _world(seed)
    settings = metrics_settings_get()
    settings.churn_period, settings.churn_inactivity_days = period, 21
    settings.save()
    summary = metrics_refresh(now=NOW)
    expected, churn, revenue = _reference(settings, NOW)
    stored = {m.customer_id: m for m in CustomerMetrics.objects.all()}
    assert stored.keys() == expected.keys()
    for customer, want in expected.items():
        got = stored[customer]
        assert (got.r_score or 0, got.f_score or 0, got.m_score or 0, got.rfm_segment, got.frequency) == (
            want["r"], want["f"], want["m"], want["group"], want["frequency"]), customer
        assert _close(got.recency_days, want["recency"], 2), (customer, got.recency_days, want["recency"])
        assert _close(got.monetary, want["monetary"], 2)
        assert _close(got.arpu, want["arpu"], 2) and _close(got.ltv, want["ltv"], 2), customer
        assert _close(got.engagement_score, want["engagement"], 1), (customer, got.engagement_score)
    assert [(p["alive"], p["churned"], p["present"]) for p in summary.churn_by_period] == [
        (p.alive, p.churned, p.present) for p in churn]
    assert summary.customers == len(expected) and summary.paying_customers == int((revenue > 0).sum())
    assert float(summary.revenue) == pytest.approx(revenue.sum(), abs=0.005)
    groups = [w["group"] for w in expected.values() if w["group"]]
    assert summary.rfm_groups == {g: groups.count(g) for g in set(groups)}


def test_revenue_per_period_reads_the_daily_values_once_they_are_ready(in_tenant):
    """The refresh asks for the revenue property's daily values; back-filled, they give the
    same revenue per period as the events (events added since by the triggers)."""
    _world(5, customers=60)
    from_events = metrics_refresh(now=NOW).churn_by_period
    rollup = RollupProperty.objects.get(event="purchase", property="amount")
    assert rollup.ready_at is None
    rollup_backfill(kind="property", rollup_id=rollup.pk, clock=lambda: NOW)
    late = Customer.objects.create(external_id="late")
    Event.objects.create(customer=late, name="purchase", timestamp=NOW - timedelta(days=45), properties={"amount": 7.5},
                         message_id="late-1")
    with connection.cursor() as cursor:  # what the daily values must answer
        cursor.execute("SELECT sum((properties ->> 'amount')::numeric) FROM customers_event "
                       "WHERE name = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number' "
                       "AND timestamp >= '2026-10-01T00:00Z' AND timestamp < '2026-11-01T00:00Z'")
        (expected,) = cursor.fetchone()
    from_rollups = metrics_refresh(now=NOW).churn_by_period
    assert from_events[-1]["period"] == "2026-10-01"  # the last whole month before NOW
    assert [p["revenue"] for p in from_rollups][:-1] == [p["revenue"] for p in from_events][:-1]
    assert from_rollups[-1]["revenue"] == round(float(expected), 2) == round(from_events[-1]["revenue"] + 7.5, 2)


def test_the_facts_table_is_gone_after_a_refresh_and_after_a_failure(in_tenant, monkeypatch):
    _world(4, customers=10)
    metrics_refresh(now=NOW)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.metrics_facts')")
        assert cursor.fetchone() == (None,)

    def broken(**kwargs):
        raise RuntimeError("lost the connection")

    monkeypatch.setattr("customers.metrics_store.scores_write", broken)
    before = list(CustomerMetrics.objects.order_by("customer_id").values_list("customer_id", "r_score"))
    with pytest.raises(RuntimeError):
        metrics_refresh(now=NOW + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.metrics_facts')")
        assert cursor.fetchone() == (None,)
    assert list(CustomerMetrics.objects.order_by("customer_id").values_list("customer_id", "r_score")) == before
