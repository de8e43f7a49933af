"""Settings → Data retention: who may change it, bad input, the audit, the upkeep queued
when retention shortens, the months shown, and another workspace left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import AuditEvent
from common.errors import DomainError
from customers import partitions
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from tests.conftest import host_of, make_member

URL = "/settings/data/"


def _client(tenant, role: str) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, f"{role}-data@{tenant.slug}.test", role))
    return client


@pytest.fixture
def upkeeps(monkeypatch):
    sent = []
    monkeypatch.setattr(partitions, "send_to_tenant", lambda task, **kwargs: sent.append((task, kwargs["schema_name"])))
    return sent


def _months(tenant) -> int | None:
    with schema_context(tenant.schema_name):
        return partitions.retention_get().event_months


def test_saving_a_shorter_retention_is_audited_and_queues_the_upkeep(tenant, upkeeps,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(tenant, "admin").post(URL, {"event_months": "13"})
    assert response.status_code == 302
    assert _months(tenant) == 13
    assert upkeeps == [(partitions.UPKEEP_TASK, tenant.schema_name)]
    with schema_context(tenant.schema_name):
        [event] = AuditEvent.objects.filter(action="data.retention_changed")
        assert event.changes == {"event_months": [None, 13]}
    # Keeping more (or everything) removes nothing, so nothing is queued.
    with django_capture_on_commit_callbacks(execute=True):
        assert _client(tenant, "admin").post(URL, {"event_months": "24"}).status_code == 302
        assert _client(tenant, "admin").post(URL, {"event_months": ""}).status_code == 302
    assert _months(tenant) is None and len(upkeeps) == 1


@pytest.mark.parametrize("value,message", [("0", "1 to 120"), ("121", "1 to 120"), ("-4", "1 to 120"),
                                           ("twelve", "Enter a whole number"), ("1e3", "Enter a whole number")])
def test_bad_retention_is_refused_on_its_field_and_nothing_changes(tenant, upkeeps, value, message):
    response = _client(tenant, "admin").post(URL, {"event_months": value})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and 'id="id_event_months-error"' in body
    assert _months(tenant) is None and upkeeps == []


def test_the_service_names_the_field_and_rechecks_the_permission(in_tenant):
    admin = make_member(in_tenant, "admin-svc@alpha.test", "admin").memberships.get()
    with pytest.raises(DomainError) as refused:
        partitions.retention_update(actor=admin, event_months=500, now=datetime.now(UTC))
    assert [(p.path, p.code) for p in refused.value.problems] == [("event_months", "invalid_range")]
    analyst = make_member(in_tenant, "analyst-svc@alpha.test", "analyst").memberships.get()
    with pytest.raises(DomainError) as denied:
        partitions.retention_update(actor=analyst, event_months=3, now=datetime.now(UTC))
    assert denied.value.problems[0].code == "permission_denied"
    assert partitions.retention_get().event_months is None


@pytest.mark.parametrize("role", ["viewer", "analyst", "marketer"])
def test_only_admins_see_or_change_retention(tenant, role):
    client = _client(tenant, role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"event_months": "1"}).status_code == 403
    assert _months(tenant) is None


def test_the_page_lists_stored_months_and_marks_what_retention_removes(tenant):
    connection.set_tenant(tenant)
    ingest_messages(messages=[Message(type="track", user_id="ret-1", event="login", timestamp=at, message_id=f"r{i}")
                              for i, at in enumerate([datetime(2020, 2, 3, tzinfo=UTC), datetime.now(UTC)])],
                    source="test", now=datetime.now(UTC))
    partitions.upkeep(now=datetime.now(UTC))
    retention = partitions.retention_get()
    retention.event_months = 24
    retention.save()
    connection.set_schema_to_public()
    body = _client(tenant, "admin").get(URL).content.decode()
    assert 'data-testid="event-storage-table"' in body
    assert "February 2020" in body and "removed at the next upkeep" in body
    assert 'value="24"' in body


def test_another_workspaces_retention_is_its_own(tenant, other_tenant):
    assert _client(tenant, "admin").post(URL, {"event_months": "6"}).status_code == 302
    assert _months(tenant) == 6 and _months(other_tenant) is None
