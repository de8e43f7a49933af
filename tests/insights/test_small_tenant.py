"""Intelligence from 200 customers: a workspace of exactly 200 generated customers gets
clusters with personas and measured rules, and a churn model whose quality report says
how far its held-out numbers can be trusted."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from demo.generator import generate
from insights.services.churn import churn_model_execute, churn_model_request
from insights.services.clustering import clustering_run_execute, clustering_run_request
from tests.conftest import make_member

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture
def analyst(tenant, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return make_member(tenant, "analyst-small@alpha.test", "analyst").memberships.get(tenant=tenant)


def test_two_hundred_customers_get_clusters_and_a_churn_model(in_tenant, analyst):
    generate(customers=200, events=6_000, now=NOW, seed=21)
    run = clustering_run_execute(run_id=clustering_run_request(actor=analyst, now=NOW).pk, clock=lambda: NOW)
    assert run.status == "succeeded", run.error
    assert run.customers == 200 and run.k >= 2
    clusters = list(run.clusters.all())
    assert all(c.persona["name"] for c in clusters) and any(c.proposal for c in clusters)

    model = churn_model_execute(model_id=churn_model_request(actor=analyst, now=NOW).pk, clock=lambda: NOW)
    assert model.status == "succeeded", model.error
    quality = model.metrics["model"]
    assert model.metrics["test_customers"] >= 20 and 0.5 < quality["auc"] <= 1, model.metrics
    # A small held-out set says so: its interval is wide.
    assert quality["auc_high"] - quality["auc_low"] > 0.05
    assert model.customers > 0
