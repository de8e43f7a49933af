"""Prometheus' /metrics: who may scrape it, and that what Strata does shows in it — requests
by route, ingested events and rejects, evaluations, freshness, lookups, queues and each
tenant's backlog. Counters live for the whole test run, so every check is a difference."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context
from prometheus_client.parser import text_string_to_metric_families

from apikeys.secrets import user_hash
from apikeys.selectors import identity_secret_current, lookup_key_current, write_key_current
from customers.models import Customer
from ops.tasking import send_to_tenant
from segments import engine
from segments.services import segment_create
from tests.conftest import host_of, membership_of, purge_queues

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    response = Client(HTTP_HOST="localhost").get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    """The sum over the series of `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def test_only_the_token_or_loopback_may_scrape(db, settings):
    assert Client(HTTP_HOST="localhost").get("/metrics").status_code == 200  # the test client is 127.0.0.1
    refused = Client(HTTP_HOST="localhost", REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert refused.status_code == 401 and refused.json()["errors"][0] == refused.json()["errors"][0] | {
        "code": "metrics_unauthorized", "path": "Authorization"}
    settings.METRICS_TOKEN = "s3cret-token"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "s3cret-toke"}):
        refused = Client(HTTP_HOST="localhost").get("/metrics", **headers)
        assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
        assert b"strata_" not in refused.content
    allowed = Client(HTTP_HOST="localhost", REMOTE_ADDR="10.1.2.3").get(
        "/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert allowed.status_code == 200 and b"strata_http_request_duration_seconds" in allowed.content


def test_a_tenant_host_never_serves_the_scrape(tenant):
    """On a workspace host /metrics/ is the customers' metrics page, behind the login."""
    response = Client(HTTP_HOST=host_of(tenant)).get("/metrics", follow=True)
    assert b"strata_http_request" not in response.content
    assert response.redirect_chain and "/accounts/login/" in response.redirect_chain[-1][0]


def test_requests_are_counted_by_route_pattern_not_by_path(tenant):
    before = scrape()
    client = Client(HTTP_HOST=host_of(tenant))
    for external_id in ("a-1", "a-2", "a-3"):
        client.get(f"/api/v1/customers/{external_id}/")  # 401 without a key: still a request
    client.get("/no/such/page/")
    after = scrape()
    route = "/api/v1/customers/<str:external_id>/"
    assert value(after, "strata_http_request_duration_seconds_count", route=route, method="GET", status="4xx") \
        - value(before, "strata_http_request_duration_seconds_count", route=route, method="GET", status="4xx") == 3
    assert not any("a-1" in dict(labels).get("route", "") for _name, labels in after)
    assert value(after, "strata_http_request_duration_seconds_count", route="unmatched") \
        > value(before, "strata_http_request_duration_seconds_count", route="unmatched")


def test_ingested_and_rejected_events_are_counted_per_tenant(tenant):
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    before = scrape()
    batch = [{"type": "track", "userId": "m-1", "event": "opened", "messageId": "m-1-a"},
             {"type": "track", "userId": "m-1", "event": "opened", "messageId": "m-1-a"},  # a duplicate
             {"type": "track", "event": "opened"}]  # no user: rejected
    client = Client(HTTP_HOST=host_of(tenant))
    response = client.post("/v1/batch", json.dumps({"writeKey": key, "batch": batch}), content_type="application/json")
    assert response.status_code == 200, response.content
    client.post("/v1/batch", json.dumps({"writeKey": "wk_nope", "batch": batch}), content_type="application/json")
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    events = "strata_ingest_events_total"
    assert delta(events, source="tracking", tenant=tenant.schema_name, outcome="accepted") == 1
    assert delta(events, source="tracking", tenant=tenant.schema_name, outcome="duplicate") == 1
    assert delta(events, source="tracking", tenant=tenant.schema_name, outcome="rejected") == 1
    assert delta("strata_ingest_rejects_total", source="tracking", code="required") == 1
    assert delta("strata_ingest_rejects_total", source="tracking", code="invalid_write_key") == 1


def test_evaluations_and_lookups_are_counted(in_tenant, tenant):
    admin = membership_of(tenant, "admin@alpha.test")
    Customer.objects.create(external_id="u-9", plan="pro")
    segment, _ = segment_create(actor=admin, key="pros", name="Pros", kind="dynamic", now=NOW, definition={
        "version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]})
    credentials = {"HTTP_AUTHORIZATION": f"Bearer {lookup_key_current().key}",
                   "HTTP_X_USER_HASH": user_hash(identity_secret_current().secret, "u-9")}
    connection.set_schema_to_public()
    before = scrape()
    with schema_context(tenant.schema_name):
        assert engine.evaluate(segment_id=segment.pk, now=NOW, trigger="manual", clock=lambda: NOW).status == "succeeded"
    client = Client(HTTP_HOST=host_of(tenant))
    for _ in range(2):  # a miss, then a hit
        assert client.get("/v1/profiles/u-9/segments", **credentials).json()["segments"] == ["pros"]
    client.get("/v1/profiles/nobody/segments", HTTP_AUTHORIZATION=credentials["HTTP_AUTHORIZATION"],
               HTTP_X_USER_HASH=_hash_in(tenant, "nobody"))
    after = scrape()
    connection.set_tenant(tenant)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("strata_evaluation_duration_seconds_count", kind="full", status="succeeded") == 1
    assert delta("strata_evaluation_duration_seconds_sum", kind="full") > 0
    assert [delta("strata_lookup_requests_total", result=r) for r in ("miss", "hit", "unknown")] == [1, 1, 1]
    # /v1/ is resolved against the tracking URLs alone, and still labelled by its whole pattern.
    assert delta("strata_http_request_duration_seconds_count", route="/v1/profiles/<str:user_id>/segments",
                 method="GET", status="2xx") == 2


def _hash_in(tenant, user_id: str) -> str:
    with schema_context(tenant.schema_name):
        return user_hash(identity_secret_current().secret, user_id)


def test_each_tenants_backlog_and_its_age_are_gauges(tenant, other_tenant):
    """No worker consumes the test queues here: what is sent waits, per tenant and queue."""
    purge_queues()
    try:
        for _ in range(2):
            send_to_tenant("segments.lookup_sync", schema_name=tenant.schema_name)
        send_to_tenant("segments.evaluate_due", schema_name=other_tenant.schema_name, now_iso=NOW.isoformat())
        time.sleep(0.05)
        found = scrape()
        assert value(found, "strata_tenant_backlog_tasks", queue="freshness", tenant=tenant.schema_name) == 2
        assert value(found, "strata_tenant_backlog_tasks", queue="evaluations", tenant=other_tenant.schema_name) == 1
        assert value(found, "strata_tenant_backlog_tasks", queue="freshness", tenant=other_tenant.schema_name) == 0
        assert 0 < value(found, "strata_tenant_backlog_age_seconds", queue="freshness", tenant=tenant.schema_name) < 60
        assert value(found, "strata_queue_messages", queue="freshness") == 2
    finally:
        purge_queues()
    assert value(scrape(), "strata_tenant_backlog_tasks", tenant=tenant.schema_name) == 0


@pytest.mark.worker
def test_a_worker_empties_the_backlog_and_records_freshness(celery_worker, alpha_committed):
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        admin = membership_of(tenant, "admin@alpha.test")
        segment_create(actor=admin, key=f"{tag}-openers", name="Openers", kind="dynamic", now=NOW, definition={
            "version": 1, "match": "all",
            "conditions": [{"type": "event", "event": "opened", "count": {"op": "gte", "value": 1}}]})
        key = write_key_current().key
    before = scrape()
    response = Client(HTTP_HOST=host_of(tenant)).post("/v1/track", json.dumps(
        {"writeKey": key, "userId": f"{tag}-u", "event": "opened", "messageId": f"{tag}-m"}),
        content_type="application/json")
    assert response.status_code == 200, response.content
    deadline = time.monotonic() + 20
    while True:
        after = scrape()
        checked = value(after, "strata_freshness_seconds_count") - value(before, "strata_freshness_seconds_count")
        if checked >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert checked >= 1
    assert value(after, "strata_tenant_backlog_tasks", queue="freshness", tenant=tenant.schema_name) == 0
    assert value(after, "strata_evaluation_duration_seconds_count", kind="incremental") \
        > value(before, "strata_evaluation_duration_seconds_count", kind="incremental")
