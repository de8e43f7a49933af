"""Clustering runs on generated customers: from 200 customers a run yields clusters with
persona drafts and proposed rules whose precision/recall are measured by evaluating the
rule; `metric cluster` reads the active run; a failed run leaves the previous one in
force; bad requests are coded 4xx problems with a path; a tenant never sees another's runs."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from django.db import connection

from common.errors import DomainError, Forbidden
from customers.models import CustomerMetrics, GeneratorTruth
from demo.generator import generate
from insights.models import Cluster, ClusterAssignment, ClusteringRun
from insights.services.clustering import clustering_run_execute, clustering_run_request, segment_from_cluster
from segments import engine
from segments.selectors.members import segment_members
from segments.services import segment_create
from tests.conftest import make_member

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def clock():
    return NOW


@pytest.fixture
def analyst(tenant):
    return make_member(tenant, "analyst-insights@alpha.test", "analyst").memberships.get(tenant=tenant)


@pytest.fixture
def marketer(tenant):
    return make_member(tenant, "marketer-insights@alpha.test", "marketer").memberships.get(tenant=tenant)


@pytest.fixture
def generated(in_tenant):
    generate(customers=260, events=9_000, now=NOW, seed=7)


def run_now(actor, **settings) -> ClusteringRun:
    run = clustering_run_request(actor=actor, now=NOW, **settings)
    return clustering_run_execute(run_id=run.pk, clock=clock)


def test_a_run_from_260_customers_finds_personas_with_measured_rules(generated, analyst, marketer):
    run = run_now(analyst, k_min=3, k_max=6)
    assert run.status == "succeeded", run.error
    assert run.is_active and run.customers == 260 and 3 <= run.k <= 6
    # k: the fewest clusters whose silhouette is within 1% of the best.
    best = max(run.silhouette.values())
    assert set(run.silhouette) == {"3", "4", "5", "6"} and run.quality["silhouette"] == run.silhouette[str(run.k)]
    assert run.k == min(int(k) for k, v in run.silhouette.items() if v >= best * 0.99)
    clusters = list(run.clusters.all())
    assert sum(c.size for c in clusters) == 260 == ClusterAssignment.objects.filter(run=run).count()
    assert len({c.persona["name"] for c in clusters}) == run.k
    assert all(c.lift and c.persona["notes"].startswith("Drafted from") for c in clusters)
    proposed = [c for c in clusters if c.proposal]
    assert proposed
    for cluster in proposed:
        assert 0 <= cluster.precision <= 1 and 0 < cluster.recall <= 1 and cluster.proposal_summary
    assert len(run.projection) == 260 and {p[2] for p in run.projection} == set(range(run.k))

    # `metric cluster` reads the active run: every customer has its run's key.
    keys = dict(CustomerMetrics.objects.values_list("customer_id", "cluster"))
    assert len(keys) == 260 and {k for k in keys.values()} == {c.key for c in clusters}

    # A segment from the best proposal, persona filled in; its members are what the rule selects.
    best = max(proposed, key=lambda c: c.f1)
    segment = segment_from_cluster(actor=marketer, cluster=best, key="from-cluster", now=NOW)
    assert segment.definition == best.proposal and segment.persona["name"] == best.persona["name"]
    engine.evaluate(segment_id=segment.pk, now=NOW, trigger="manual", clock=clock)
    assert segment_members(segment=segment).count() == best.matched


def test_a_segment_on_the_cluster_metric_has_the_clusters_members(generated, analyst, marketer):
    run = run_now(analyst, k=3)
    cluster = run.clusters.get(index=0)
    segment, _ = segment_create(actor=marketer, key="cluster-one", name="Cluster one", now=NOW, definition={
        "version": 1, "match": "all", "conditions": [{"type": "metric", "metric": "cluster", "op": "eq",
                                                      "value": cluster.key}]})
    engine.evaluate(segment_id=segment.pk, now=NOW, trigger="manual", clock=clock)
    assert segment_members(segment=segment).count() == cluster.size


def test_reruns_are_reproducible_and_a_failed_run_leaves_the_previous_in_force(generated, analyst, monkeypatch):
    first = run_now(analyst, k=4, seed=3)
    second = run_now(analyst, k=4, seed=3)
    sizes = lambda run: [c.size for c in run.clusters.all()]  # noqa: E731
    assert sizes(first) == sizes(second)
    assert not ClusteringRun.objects.get(pk=first.pk).is_active and second.is_active

    from insights.services import clustering

    def broken(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(clustering, "fit", broken)
    with pytest.raises(RuntimeError):
        run_now(analyst, k=4)
    failed = ClusteringRun.objects.order_by("-version").first()
    assert failed.status == "failed" and "worker lost" in failed.error and not failed.is_active
    assert ClusteringRun.objects.get(is_active=True) == second
    assert set(CustomerMetrics.objects.values_list("cluster", flat=True)) == {c.key for c in second.clusters.all()}


def test_too_few_customers_get_a_clear_message_not_a_model(in_tenant, analyst):
    generate(customers=150, events=3_000, now=NOW, seed=1)
    run = run_now(analyst, k=3)
    assert run.status == "failed" and run.error == "Clustering needs at least 200 customers; the scope has 150."
    assert not Cluster.objects.filter(run=run).exists() and not run.is_active


@pytest.mark.parametrize("settings,path,code", [
    ({"k": 1}, "k", "out_of_range"),
    ({"k": 21}, "k", "out_of_range"),
    ({"k": "4"}, "k", "out_of_range"),
    ({"k_min": 6, "k_max": 3}, "k_max", "invalid_range"),
    ({"algorithm": "dbscan"}, "algorithm", "invalid_choice"),
    ({"features": ["events_30d", "shoe_size"]}, "features[1]", "unknown_feature"),
    ({"groups": ["astrology"]}, "groups[0]", "unknown_group"),
    ({"segment": "ghosts"}, "segment", "unknown_segment"),
    ({"seed": -1}, "seed", "out_of_range"),
])
def test_bad_settings_are_refused_with_a_code_at_their_path(in_tenant, analyst, settings, path, code):
    with pytest.raises(DomainError) as refused:
        clustering_run_request(actor=analyst, now=NOW, **settings)
    assert [(p.path, p.code) for p in refused.value.problems] == [(path, code)]
    assert not ClusteringRun.objects.exists()


def test_only_roles_with_insights_run_may_run_models(in_tenant, marketer, tenant):
    viewer = make_member(tenant, "viewer-insights@alpha.test", "viewer").memberships.get(tenant=tenant)
    for actor in (marketer, viewer):
        with pytest.raises(Forbidden):
            clustering_run_request(actor=actor, now=NOW)


def test_a_run_reads_only_its_own_tenants_customers(generated, analyst, other_tenant):
    run = run_now(analyst, k=3)
    ours = set(GeneratorTruth.objects.values_list("customer_id", flat=True))
    assert set(ClusterAssignment.objects.filter(run=run).values_list("customer_id", flat=True)) == ours
    connection.set_tenant(other_tenant)
    try:
        assert not ClusteringRun.objects.exists() and not CustomerMetrics.objects.filter(cluster__startswith="r").exists()
    finally:
        connection.set_schema_to_public()


def test_the_planted_personas_are_recovered_and_the_weekend_one_reads_as_a_share(in_tenant, analyst):
    """1,500 generated customers: the default run finds the seven planted personas (ARI ≥
    0.8 against the generator's truth, which the features never read), its rules reach a
    median F1 of 0.85, and the weekend persona's cluster is proposed with time of week."""
    from collections import Counter

    from sklearn.metrics import adjusted_rand_score

    generate(customers=1500, events=45_000, now=NOW, seed=5)
    run = run_now(analyst, k_min=3, k_max=9)
    truth = dict(GeneratorTruth.objects.values_list("customer_id", "persona"))
    found = dict(ClusterAssignment.objects.filter(run=run).values_list("customer_id", "index"))
    ids = sorted(truth)
    assert run.k == 7
    assert adjusted_rand_score([truth[i] for i in ids], [found[i] for i in ids]) >= 0.8
    assert run.quality["median_rule_f1"] >= 0.85
    weekend = [c for c in run.clusters.all()
               if Counter(truth[i] for i in ids if found[i] == c.index).most_common(1)[0][0] == "weekend_power_user"]
    assert len(weekend) == 1
    assert "Weekend" in weekend[0].persona["name"]
    assert '"share"' in json.dumps(weekend[0].proposal) and '"when"' in json.dumps(weekend[0].proposal)


def test_the_nightly_task_puts_new_customers_into_the_active_clusters(generated, analyst, settings, tmp_path):
    """The active run's saved model assigns customers who arrived after it, under the
    run's own keys; customers it had keep theirs."""
    from insights.tasks import nightly

    settings.MEDIA_ROOT = str(tmp_path)
    run = run_now(analyst, k=3)
    before = dict(CustomerMetrics.objects.values_list("customer_id", "cluster"))
    generate(customers=40, events=1_200, now=NOW, seed=99)
    nightly(now_iso=NOW.isoformat())
    after = dict(CustomerMetrics.objects.values_list("customer_id", "cluster"))
    keys = {c.key for c in run.clusters.all()}
    assert len(after) == 300 and set(after.values()) <= keys
    assert all(after[c] == before[c] for c in before)
    assert ClusterAssignment.objects.filter(run=run).count() == 300
    run.refresh_from_db()
    assert run.reassigned_at == NOW


def test_a_run_whose_worker_died_is_failed_at_night_and_the_active_one_stays(generated, analyst, settings, tmp_path):
    """A run left "running" past its time limit (its worker killed) is marked failed by the
    nightly sweep; the run in force and the customers' keys are untouched."""
    from datetime import timedelta

    import time_machine

    from insights.services.clustering import clustering_run_request
    from insights.tasks import nightly

    settings.MEDIA_ROOT = str(tmp_path)
    active = run_now(analyst, k=3)
    dead = clustering_run_request(actor=analyst, now=NOW, k=4)
    ClusteringRun.objects.filter(pk=dead.pk).update(status="running")
    keys = dict(CustomerMetrics.objects.values_list("customer_id", "cluster"))
    with time_machine.travel(dead.created_at + timedelta(hours=3), tick=False):
        nightly(now_iso=NOW.isoformat())
    dead.refresh_from_db()
    assert dead.status == "failed" and "stopped before it finished" in dead.error and not dead.is_active
    assert ClusteringRun.objects.get(is_active=True) == active
    assert dict(CustomerMetrics.objects.values_list("customer_id", "cluster")) == keys
