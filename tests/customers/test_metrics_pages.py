"""Metrics pages, Settings → Metrics, the metrics API and the refresh task: permissions,
bad input, tenant isolation, and a real worker running a refresh."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.metrics_refresh import metrics_refresh, metrics_settings_get
from customers.models import CustomerMetrics, MetricsSettings, MetricsSummary
from ops.models import TaskRun
from tests.conftest import host_of, make_member

NOW = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)
GOOD = {"revenue_event": "order_paid", "revenue_property": "total", "gross_margin": "0.65",
        "expected_lifespan_months": "36", "churn_period": "week", "churn_inactivity_days": "45"}


def _client(tenant, role: str) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, f"{role}-metrics@{tenant.slug}.test", role))
    return client


def _seed(tenant, user="ann", amount=120):
    connection.set_tenant(tenant)
    ingest_messages(messages=[Message(type="track", user_id=user, event="purchase", timestamp=NOW - timedelta(days=20),
                                      properties={"amount": amount}, message_id=f"seed-{user}", index=0, path="batch[0]")],
                    source="test", now=NOW)
    summary = metrics_refresh(now=NOW)
    connection.set_schema_to_public()
    return summary


def test_the_overview_shows_figures_charts_and_groups(tenant):
    _seed(tenant)
    body = _client(tenant, "viewer").get("/metrics/").content.decode()
    assert 'data-testid="metrics-figures"' in body and "data-chart" in body and "RFM groups" in body
    assert "Refresh now" not in body  # a viewer may not start work
    assert "Change how they are computed" not in body


def test_the_overview_before_any_refresh_tells_what_to_do(tenant):
    body = _client(tenant, "marketer").get("/metrics/").content.decode()
    assert "No metrics yet" in body and "Refresh now" in body


def test_refresh_now_queues_one_run_and_answers_with_its_progress(tenant):
    client = _client(tenant, "marketer")
    response = client.post("/metrics/refresh/", HTTP_HX_REQUEST="true")
    assert response.status_code == 202 and 'data-testid="task-run"' in response.content.decode()
    again = client.post("/metrics/refresh/", HTTP_HX_REQUEST="true")
    assert again.status_code == 202
    connection.set_tenant(tenant)
    assert TaskRun.objects.filter(kind="metrics_refresh").count() == 1  # the queued one is reused
    connection.set_schema_to_public()


def test_a_viewer_may_not_refresh(tenant):
    assert _client(tenant, "viewer").post("/metrics/refresh/").status_code == 403


def test_settings_are_saved_audited_and_used_by_the_next_refresh(tenant):
    response = _client(tenant, "admin").post("/settings/metrics/", GOOD)
    assert response.status_code == 302
    connection.set_tenant(tenant)
    saved = metrics_settings_get()
    assert (saved.revenue_event, str(saved.gross_margin), saved.churn_period, saved.churn_inactivity_days) == (
        "order_paid", "0.6500", "week", 45)
    assert AuditEvent.objects.filter(action="metrics.settings_changed").exists()
    ingest_messages(messages=[Message(type="track", user_id="bo", event="order_paid", timestamp=NOW - timedelta(days=2),
                                      properties={"total": 80}, message_id="op-1", index=0, path="batch[0]")],
                    source="test", now=NOW)
    summary = metrics_refresh(now=NOW)
    assert summary.revenue == 80 and summary.settings["churn_period"] == "week"
    assert CustomerMetrics.objects.get(customer__external_id="bo").frequency == 1
    connection.set_schema_to_public()


@pytest.mark.parametrize("field,value,message", [
    ("gross_margin", "1.5", "at most 1"),
    ("gross_margin", "0", "more than 0"),
    ("gross_margin", "lots", "Enter a number"),
    ("expected_lifespan_months", "-3", "more than 0"),
    ("expected_lifespan_months", "601", "at most 600"),
    ("churn_inactivity_days", "0", "1 to 3650"),
    ("churn_period", "fortnight", "Select a valid choice"),
    ("revenue_event", "   ", "This field is required"),
    ("revenue_property", "x" * 201, "at most 200 characters"),
])
def test_bad_settings_are_refused_on_their_field_and_nothing_changes(tenant, field, value, message):
    response = _client(tenant, "admin").post("/settings/metrics/", {**GOOD, field: value})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and f'id="id_{field}-error"' in body
    connection.set_tenant(tenant)
    assert metrics_settings_get().revenue_event == "purchase"  # the defaults stand
    connection.set_schema_to_public()


def test_only_admins_open_metrics_settings(tenant):
    assert _client(tenant, "marketer").get("/settings/metrics/").status_code == 403
    assert _client(tenant, "admin").get("/settings/metrics/").status_code == 200


def test_the_api_returns_the_latest_figures(tenant):
    _seed(tenant)
    body = _client(tenant, "analyst").get("/api/v1/metrics/").json()
    assert body["customers"] == 1 and body["revenue"] == "120.00" and body["rfm_groups"]
    assert body["settings"]["revenue_event"] == "purchase"


def test_the_api_before_any_refresh_has_no_figures(tenant):
    body = _client(tenant, "analyst").get("/api/v1/metrics/").json()
    assert body["computed_at"] is None and body["customers"] == 0


def test_the_api_refresh_answers_202_with_a_task_to_poll(tenant):
    client = _client(tenant, "marketer")
    body = client.post("/api/v1/metrics/refresh/").json()
    assert body["kind"] == "metrics_refresh" and body["status"] == "queued"
    polled = client.get(body["url"])
    assert polled.status_code == 200 and polled.json()["id"] == body["id"]


def test_figures_of_another_tenant_are_not_shown(tenant, other_tenant):
    """beta's revenue never appears on alpha's pages or API."""
    _seed(other_tenant, user="beta-only", amount=777)
    client = _client(tenant, "admin")
    assert "777" not in client.get("/metrics/").content.decode()
    assert client.get("/api/v1/metrics/").json()["computed_at"] is None


def test_another_tenants_task_run_is_not_found_over_the_api(tenant, other_tenant):
    connection.set_tenant(other_tenant)
    for _ in range(3):  # ids are per schema: make beta's id one alpha does not have
        foreign = TaskRun.objects.create(kind=TaskRun.Kind.METRICS_REFRESH)
    connection.set_tenant(tenant)
    assert not TaskRun.objects.filter(pk=foreign.pk).exists()
    connection.set_schema_to_public()
    assert _client(tenant, "admin").get(f"/api/v1/tasks/{foreign.pk}/").status_code == 404


@pytest.mark.worker
def test_a_real_worker_runs_a_queued_refresh_to_completion(committed_db, celery_worker):
    """POST /metrics/refresh/ → the worker scores the customers and the run ends
    `succeeded` with its progress complete."""
    from customers.models import Customer
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="alpha")
    connection.set_tenant(tenant)
    ingest_messages(messages=[Message(type="track", user_id="worker-ann", event="purchase", timestamp=NOW,
                                      properties={"amount": 10}, message_id="worker-m1", index=0, path="batch[0]")],
                    source="test", now=NOW + timedelta(minutes=1))
    connection.set_schema_to_public()
    try:
        response = _client(tenant, "marketer").post("/api/v1/metrics/refresh/")
        run_id = response.json()["id"]
        connection.set_tenant(tenant)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = TaskRun.objects.get(pk=run_id)
            if run.is_finished:
                break
            time.sleep(0.2)
        assert (run.status, run.error) == ("succeeded", "")
        assert run.done == run.total and run.result["customers"] >= 1
        assert CustomerMetrics.objects.filter(customer__external_id="worker-ann").exists()
    finally:
        connection.set_tenant(tenant)
        CustomerMetrics.objects.all().delete()
        MetricsSummary.objects.all().delete()
        MetricsSettings.objects.all().delete()
        TaskRun.objects.all().delete()
        Customer.objects.filter(external_id="worker-ann").delete()
        connection.set_schema_to_public()
