"""/api/v1/insights/: runs started and read over the API, a segment from a cluster, scores;
bad input is a coded 400 with its path (nothing stored), another workspace's runs are
404 on every route, and viewers read aggregates but not per-customer scores' owners."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from django.db import connection

from customers.models import Customer
from demo.generator import generate
from insights.models import ChurnModel, ClusteringRun
from insights.services.churn import churn_model_execute
from insights.services.clustering import clustering_run_execute
from tests.conftest import session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
URL = "/api/v1/insights/"


def post(client, url, body):
    return client.post(url, body if isinstance(body, str) else json.dumps(body), content_type="application/json")


def problems(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


@pytest.fixture
def analyst(tenant):
    return session(tenant, "analyst")


def test_a_run_over_the_api_then_a_segment_from_its_best_cluster(tenant, analyst, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    connection.set_tenant(tenant)
    generate(customers=300, events=9_000, now=NOW, seed=2)
    connection.set_schema_to_public()
    started = post(analyst, f"{URL}clustering-runs/", {"k_min": 3, "k_max": 5, "seed": 4})
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["status"] == "queued" and body["groups"] == ["traits", "timing"] and body["task_run"]
    connection.set_tenant(tenant)
    clustering_run_execute(run_id=ClusteringRun.objects.get(version=body["version"]).pk, clock=lambda: NOW)
    connection.set_schema_to_public()

    run = analyst.get(f"{URL}clustering-runs/{body['version']}/").json()
    assert run["status"] == "succeeded" and len(run["clusters"]) == run["k"]
    assert all(c["persona"]["name"] and c["lift"] for c in run["clusters"])
    listed = analyst.get(f"{URL}clustering-runs/").json()
    assert [r["version"] for r in listed["results"]] == [body["version"]]

    best = max((c for c in run["clusters"] if c["proposal"]), key=lambda c: c["f1"])
    path = f"{URL}clustering-runs/{body['version']}/clusters/{best['index']}/segment/"
    assert post(session(tenant, "viewer"), path, {"key": "from-api"}).status_code == 403  # viewers do not edit segments
    made = post(analyst, path, {"key": "from-api"})
    assert made.status_code == 201, made.content
    assert made.json()["definition"] == best["proposal"]
    again = post(analyst, path, {"key": "from-api"})
    assert again.status_code == 400 and ("key", "duplicate") in problems(again)

    features = analyst.get(f"{URL}features/").json()
    assert {"share.weekend", "events_30d", "survey.nps"} <= {f["name"] for f in features}


def test_churn_models_and_scores_over_the_api(tenant, analyst, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    connection.set_tenant(tenant)
    generate(customers=700, events=21_000, now=NOW, seed=6)
    connection.set_schema_to_public()
    started = post(analyst, f"{URL}churn-models/", {})
    assert started.status_code == 202
    connection.set_tenant(tenant)
    churn_model_execute(model_id=ChurnModel.objects.get(version=started.json()["version"]).pk, clock=lambda: NOW)
    someone = Customer.objects.exclude(last_seen_at=None).first().external_id
    connection.set_schema_to_public()
    model = analyst.get(f"{URL}churn-models/{started.json()['version']}/").json()
    assert model["status"] == "succeeded" and model["metrics"]["model"]["auc"] > 0.5, model["error"]
    riskiest = analyst.get(f"{URL}scores/?min_risk=0.5&limit=5").json()["results"]
    assert riskiest and all(row["churn_risk"] >= 0.5 for row in riskiest)
    assert [r["churn_risk"] for r in riskiest] == sorted((r["churn_risk"] for r in riskiest), reverse=True)
    one = analyst.get(f"{URL}scores/?customer={someone}").json()["results"]
    assert [row["customer"] for row in one] == [someone]


@pytest.mark.parametrize("body,expected", [
    ({"k": 1}, {("k", "out_of_range")}),
    ({"k": "many"}, {("k", "invalid")}),
    ({"k_min": 7, "k_max": 3}, {("k_max", "invalid_range")}),
    ({"groups": ["astrology"]}, {("groups[0]", "unknown_group")}),
    ({"features": ["events_30d", "shoe_size"]}, {("features[1]", "unknown_feature")}),
    ({"segment": "ghosts"}, {("segment", "unknown_segment")}),
    ({"algorithm": "dbscan"}, {("algorithm", "invalid_choice")}),
    ({"colour": "red"}, {("colour", "unknown_field")}),
    ({"groups": "traits"}, {("groups", "not_a_list")}),
])
def test_bad_run_settings_are_coded_400s_and_nothing_is_queued(tenant, analyst, body, expected):
    response = post(analyst, f"{URL}clustering-runs/", body)
    assert response.status_code == 400, response.content
    assert problems(response) == expected
    connection.set_tenant(tenant)
    assert not ClusteringRun.objects.exists()


def test_bad_score_filters_are_coded(analyst):
    response = analyst.get(f"{URL}scores/?min_risk=2&high_potential=maybe")
    assert response.status_code == 400
    assert problems(response) == {("min_risk", "invalid_value"), ("high_potential", "invalid_value")}


def test_another_workspaces_runs_are_not_found(tenant, other_tenant, settings, tmp_path):
    connection.set_tenant(other_tenant)
    ClusteringRun.objects.create(version=1, status="succeeded", as_of=NOW, k=2, customers=300)
    ChurnModel.objects.create(version=1, status="succeeded", as_of=NOW, horizon_days=30, lead_days=15)
    connection.set_schema_to_public()
    ours = session(tenant, "analyst")
    for path in ("clustering-runs/1/", "churn-models/1/"):
        assert ours.get(f"{URL}{path}").status_code == 404
    assert post(session(tenant, "marketer"), f"{URL}clustering-runs/1/clusters/0/segment/",
                {"key": "x"}).status_code == 404
    assert ours.get(f"{URL}clustering-runs/").json()["results"] == []
    assert ours.get("/insights/clustering/1/").status_code == 404
    assert ours.get("/insights/churn/1/").status_code == 404
