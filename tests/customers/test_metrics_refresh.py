"""The metrics refresher on real PostgreSQL: facts read set-wise, scored, written in bulk."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.metrics_refresh import metrics_refresh, metrics_settings_get
from customers.models import Customer, CustomerMetrics, MetricsSummary

NOW = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)


def _track(i: int, user: str, event: str, when: datetime, **properties) -> Message:
    return Message(type="track", user_id=user, event=event, timestamp=when, properties=properties,
                   message_id=f"m-{user}-{i}", index=i, path=f"batch[{i}]")


def _ingest(*messages: Message) -> None:
    ingest_messages(messages=list(messages), source="test", now=NOW)


def _world():
    """ann: bought 3 times (300 in all), last seen yesterday. bob: one purchase of 50
    40 days ago, gone since. cat: only logins, two of them in the last 30 days, on
    different days. dan: a profile with no events."""
    day = timedelta(days=1)
    _ingest(
        _track(0, "ann", "purchase", NOW - 90 * day, amount=100), _track(1, "ann", "purchase", NOW - 60 * day, amount=100),
        _track(2, "ann", "purchase", NOW - 1 * day, amount=100), _track(3, "bob", "purchase", NOW - 40 * day, amount=50),
        _track(4, "cat", "login", NOW - 3 * day), _track(5, "cat", "login", NOW - 2 * day),
        _track(6, "cat", "purchase", NOW - 5 * day, amount="12"),  # a string amount is not revenue
        _track(7, "ann", "purchase", NOW + day, amount=999),  # after now: ignored
        Message(type="identify", user_id="dan", timestamp=NOW, traits={"plan": "free"}, index=8, path="batch[8]"),
    )


def _metrics() -> dict[str, CustomerMetrics]:
    return {m.customer.external_id: m for m in CustomerMetrics.objects.select_related("customer")}


def test_recency_frequency_and_monetary_by_hand(in_tenant):
    _world()
    metrics_refresh(now=NOW)
    got = _metrics()
    assert set(got) == {"ann", "bob", "cat", "dan"}
    assert (got["ann"].recency_days, got["ann"].frequency, got["ann"].monetary) == (1.0, 3, Decimal("300.00"))
    assert (got["bob"].recency_days, got["bob"].frequency, got["bob"].monetary) == (40.0, 1, Decimal("50.00"))
    assert (got["cat"].recency_days, got["cat"].frequency, got["cat"].monetary) == (2.0, 1, Decimal("0.00"))
    assert got["dan"].recency_days is None and got["dan"].rfm_segment == ""


def test_scores_and_groups_by_hand(in_tenant):
    """Three scored customers (dan has no events). Recency ranks: ann (1 d) best, cat
    (2 d), bob (40 d) → R = 1 + ⌊5·worse/3⌋: ann 4, cat 2, bob 1. Frequency ann 3, bob 1,
    cat 1 → ann 4, bob and cat tie at 1. Monetary ann 300, bob 50, cat 0 → 4, 2, 1."""
    _world()
    metrics_refresh(now=NOW)
    got = _metrics()
    assert [(got[c].r_score, got[c].f_score, got[c].m_score) for c in ("ann", "bob", "cat")] == [
        (4, 4, 4), (1, 1, 2), (2, 1, 1)]
    # ann: R4 FM4 → loyal; bob: R1 FM round(1.5)=2 → hibernating; cat: R2 FM1 → hibernating.
    assert [got[c].rfm_segment for c in ("ann", "bob", "cat")] == ["loyal", "hibernating", "hibernating"]


def test_arpu_ltv_and_engagement_per_customer(in_tenant):
    """ann's tenure runs from her first event (90 days): 300 over 90/30.4375 months ≈ 101.46
    per month; LTV = ARPU × 0.7 × 24 months."""
    _world()
    metrics_refresh(now=NOW)
    ann = _metrics()["ann"]
    expected_arpu = 300 / (90 / (365.25 / 12))
    assert float(ann.arpu) == pytest.approx(expected_arpu, abs=0.01)
    assert float(ann.ltv) == pytest.approx(expected_arpu * 0.7 * 24, abs=0.05)
    cat = _metrics()["cat"]
    assert cat.engagement_score is not None and cat.engagement_score > _metrics()["bob"].engagement_score


def test_the_summary_has_churn_arpu_and_both_ltvs(in_tenant):
    _world()
    summary = metrics_refresh(now=NOW)
    assert (summary.customers, summary.paying_customers, summary.revenue) == (4, 2, Decimal("350.00"))
    october = summary.churn_by_period[-1]
    # Alive on 1 Oct: ann (first event Aug), bob (first event 6 Oct? no: 40 days before
    # 15 Nov is 6 Oct) → only ann; bob appears during October.
    assert october["period"] == "2026-10-01"
    assert (october["alive"], october["churned"], october["present"]) == (1, 0, 2)
    assert october["revenue"] == 50.0 and october["arpu"] == 25.0
    assert summary.arpu == Decimal("25.00") and summary.churn_rate == 0.0
    assert summary.ltv_lifespan == Decimal("420.00")  # 25 × 0.7 × 24
    assert summary.ltv_churn is None  # no churn: unbounded
    assert summary.rfm_groups == {"loyal": 1, "hibernating": 2}
    assert summary.settings["revenue_event"] == "purchase"


def test_a_rerun_for_the_same_now_writes_the_same_values(in_tenant):
    _world()
    metrics_refresh(now=NOW)
    first = {k: (m.r_score, m.f_score, m.m_score, m.rfm_segment, m.arpu, m.engagement_score) for k, m in _metrics().items()}
    metrics_refresh(now=NOW)
    again = {k: (m.r_score, m.f_score, m.m_score, m.rfm_segment, m.arpu, m.engagement_score) for k, m in _metrics().items()}
    assert first == again and CustomerMetrics.objects.count() == 4 and MetricsSummary.objects.count() == 2


def test_the_revenue_event_and_property_are_tenant_settings(in_tenant):
    _world()
    settings = metrics_settings_get()
    settings.revenue_event, settings.revenue_property = "login", "amount"
    settings.save()
    metrics_refresh(now=NOW)
    got = _metrics()
    assert (got["cat"].frequency, got["cat"].monetary) == (2, Decimal("0.00"))  # logins carry no amount
    assert got["ann"].frequency == 0


def test_values_from_other_models_survive_a_refresh(in_tenant):
    """churn_risk and cluster belong to the predictive and clustering models."""
    _world()
    metrics_refresh(now=NOW)
    CustomerMetrics.objects.filter(customer__external_id="ann").update(churn_risk=0.8, cluster="power")
    metrics_refresh(now=NOW + timedelta(days=1))
    ann = _metrics()["ann"]
    assert (ann.churn_risk, ann.cluster, ann.recency_days) == (0.8, "power", 2.0)


def test_progress_is_reported_per_range_of_customers(in_tenant):
    _world()
    ticks = []
    metrics_refresh(now=NOW, progress=lambda done, total, message: ticks.append((done, total, message)))
    assert ticks[0] == (4, 4, "Reading customers' events") and ticks[-1][2] == "Saving metrics"


def test_an_empty_workspace_refreshes_to_an_empty_summary(in_tenant):
    Customer.objects.all().delete()
    summary = metrics_refresh(now=NOW)
    assert (summary.customers, summary.arpu, summary.ltv_lifespan, summary.rfm_groups) == (0, None, None, {})
