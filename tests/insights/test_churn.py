"""The churn model: a time split on generated customers (whose churn the generator planted
and the features never read) reaches AUC ≥ 0.85 with features 45 days before the end of
the label window, is calibrated (ECE ≤ 0.05), beats or matches its logistic baseline,
scores every customer with drivers and a predicted LTV, and is kept in the tenant's own
storage. Too little data gets a message instead of a model."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import joblib
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import connection

from common.errors import Forbidden
from customers.models import Customer, CustomerMetrics, MetricsSettings
from demo.generator import generate
from insights.models import ChurnModel, CustomerScore
from insights.services.churn import churn_model_execute, churn_model_request
from segments import engine
from segments.selectors.members import segment_members
from segments.services import segment_create
from tests.conftest import make_member

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def clock():
    return NOW


@pytest.fixture
def analyst(tenant):
    return make_member(tenant, "analyst-churn@alpha.test", "analyst").memberships.get(tenant=tenant)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def train_now(actor, **settings) -> ChurnModel:
    model = churn_model_request(actor=actor, now=NOW, **settings)
    return churn_model_execute(model_id=model.pk, clock=clock)


def test_a_model_on_planted_churn_is_accurate_calibrated_and_early(in_tenant, analyst, media):
    generate(customers=5000, events=150_000, now=NOW, seed=5)
    model = train_now(analyst)
    assert model.status == "succeeded", model.error
    assert model.is_active and model.horizon_days == 30 and model.lead_days == 15
    assert model.metrics["model"]["auc"] >= 0.85, model.metrics
    assert model.metrics["model"]["auc_low"] < model.metrics["model"]["auc"] < model.metrics["model"]["auc_high"]
    assert model.metrics["model"]["ece"] <= 0.05
    # Not worse than the logistic baseline beyond what its held-out customers can tell apart.
    assert model.metrics["model"]["auc"] >= model.metrics["baseline"]["auc_low"]
    assert [row["days_ahead"] for row in model.by_lead] == [30, 45, 60]
    assert all(row["auc"] >= 0.8 for row in model.by_lead)
    assert sum(row["customers"] for row in model.calibration) == model.metrics["test_customers"]
    # Every customer with events is scored; risk and predicted LTV are also metrics for rules.
    scored = CustomerScore.objects.count()
    assert scored == Customer.objects.exclude(last_seen_at=None).count() == model.customers
    risky = CustomerScore.objects.filter(churn_risk__lt=1).order_by("-churn_risk").first()
    assert risky.drivers and all(d["contribution"] > 0 for d in risky.drivers)
    gone = CustomerScore.objects.filter(churn_risk=1).first()
    assert gone.drivers[0]["note"] == "No activity for 30+ days"
    assert CustomerMetrics.objects.exclude(churn_risk=None).count() == scored
    assert all(s.ltv_low <= s.predicted_ltv <= s.ltv_high for s in CustomerScore.objects.exclude(predicted_ltv=None))
    assert model.ltv["revenue_basis"] == "learnt" and model.ltv["payers"] >= 30
    # The artifact sits in this tenant's folder and loads back.
    assert model.artifact.startswith(f"insights/{connection.schema_name}/")
    with default_storage.open(model.artifact, "rb") as stream:
        assert joblib.load(stream)["version"] == model.version

    marketer = make_member(connection.tenant, "m-churn@alpha.test", "marketer").memberships.get(tenant=connection.tenant)
    segment, _ = segment_create(actor=marketer, key="at-risk", name="At risk", now=NOW, definition={
        "version": 1, "match": "all", "conditions": [
            {"type": "metric", "metric": "churn_risk", "op": "gte", "value": 0.5},
            {"type": "metric", "metric": "churn_risk", "op": "lt", "value": 1}]})
    engine.evaluate(segment_id=segment.pk, now=NOW, trigger="manual", clock=clock)
    expected = CustomerScore.objects.filter(churn_risk__gte=0.5, churn_risk__lt=1).count()
    assert expected and segment_members(segment=segment).count() == expected


def test_the_horizon_is_the_tenants_setting(in_tenant, analyst, media):
    MetricsSettings.objects.create(churn_inactivity_days=45)
    generate(customers=900, events=27_000, now=NOW, seed=3)
    model = train_now(analyst)
    assert model.status == "succeeded", model.error
    assert model.horizon_days == 45 and [row["days_ahead"] for row in model.by_lead][:1] == [45]


def test_without_enough_payments_predicted_ltv_is_built_on_arpu(in_tenant, analyst, media):
    """A tenant whose revenue event few customers sent: no regression to learn, so each
    customer's monthly revenue is its own ARPU so far (the tenant's mean if it paid nothing)."""
    generate(customers=900, events=27_000, now=NOW, seed=3)
    MetricsSettings.objects.create(revenue_event="invoice_paid", gross_margin="0.5")
    payers = list(Customer.objects.exclude(last_seen_at=None).order_by("id")[:12])
    for customer in payers:
        customer.events.create(name="invoice_paid", timestamp=NOW - timedelta(days=100), properties={"amount": 300})
    model = train_now(analyst)
    assert model.status == "succeeded", model.error
    assert model.ltv["revenue_basis"] == "arpu" and model.ltv["payers"] == 0
    from insights.models.ltv import expected_months, monthly_hazard

    for customer in payers[:5]:
        score = CustomerScore.objects.get(customer=customer)
        tenure_months = max((NOW - customer.signed_up_at).total_seconds() / 86400 / (365.25 / 12), 1)
        monthly = 300 / tenure_months * 0.5
        expected = monthly * expected_months(monthly_hazard(np.array([score.churn_risk]), 15 + 30))[0]
        assert float(score.predicted_ltv) == pytest.approx(expected, rel=0.01)
    stranger = CustomerScore.objects.exclude(customer__in=payers).exclude(churn_risk=1).first()
    assert stranger.predicted_ltv > 0  # the tenant's mean ARPU, not nothing


def test_too_little_data_gives_a_message_and_leaves_the_active_model(in_tenant, analyst, media):
    generate(customers=120, events=2_400, now=NOW, seed=1)
    model = train_now(analyst)
    assert model.status == "failed" and not model.is_active
    assert model.error == "A churn model needs at least 200 customers; the workspace has 120."
    assert not CustomerScore.objects.exists()


def test_nobody_churning_is_refused_with_a_reason(in_tenant, analyst, media):
    for i in range(210):
        customer = Customer.objects.create(external_id=f"loyal-{i}", signed_up_at=NOW - timedelta(days=200))
        for days in (70, 50, 40, 20, 5):
            customer.events.create(name="login", timestamp=NOW - timedelta(days=days), properties={})
    model = train_now(analyst)
    assert model.status == "failed" and model.error == "Nothing to learn from: no customer churned in the horizon."


def test_only_insights_run_trains(in_tenant, tenant):
    marketer = make_member(tenant, "m2-churn@alpha.test", "marketer").memberships.get(tenant=tenant)
    with pytest.raises(Forbidden):
        churn_model_request(actor=marketer, now=NOW)
    assert not ChurnModel.objects.exists()
