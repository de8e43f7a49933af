"""Host → tenant is remembered per process while the routing version holds: the second
request reads no domain row, a committed change to a Tenant or Domain is seen at the next
request, and without Redis routing reads the database as before."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants import routing
from tenants.models import Tenant
from tenants.services import tenant_set_status
from tests.conftest import host_of


def domain_reads(client: Client, path: str = "/healthz") -> int:
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    return sum("tenants_domain" in q["sql"] for q in queries.captured_queries)


@pytest.fixture
def alpha(committed_db):
    tenant = Tenant.objects.get(slug="alpha")
    yield tenant
    connection.set_schema_to_public()
    tenant_set_status(tenant=Tenant.objects.get(slug="alpha"), status="active")


def test_the_second_request_reads_no_domain_and_a_change_is_seen_at_once(alpha):
    client = Client(HTTP_HOST=host_of(alpha))
    routing._bump()
    assert domain_reads(client) == 1
    assert domain_reads(client) == 0  # remembered
    connection.set_schema_to_public()
    tenant_set_status(tenant=Tenant.objects.get(slug="alpha"), status="suspended")  # commits: autocommit
    answer = client.get("/accounts/login/")
    assert answer.status_code == 403 and b"is suspended" in answer.content


def test_without_redis_routing_reads_the_database(alpha, monkeypatch):
    import redis

    class Down:
        def get(self, key):
            raise redis.ConnectionError("down")

        def set(self, key, value):
            raise redis.ConnectionError("down")

    monkeypatch.setattr(routing, "_redis", lambda: Down())
    client = Client(HTTP_HOST=host_of(alpha))
    assert domain_reads(client) == 1 and domain_reads(client) == 1


def test_inside_a_transaction_nothing_is_remembered(tenant):
    client = Client(HTTP_HOST=host_of(tenant))
    assert domain_reads(client) == 1 and domain_reads(client) == 1
