"""Previews and reports on a real streaming replica (started by tests/test_read_replica.py):
they read there, in the tenant's schema, and fall back to the primary when the replica lags,
is unreachable, or the caller is inside a transaction; writes never reach it."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django_tenants.utils import schema_context

from common.replica import forget_health, replica_reads
from customers.models import Customer
from insights.reports.kpis import KpiQuery, segment_kpis
from segments.selectors.preview import preview
from tenants.models import Tenant
from tests.segments.test_selectors import SYSTEM, plan_is

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def caught_up(timeout: float = 15) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        (target,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with connections["replica"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                forget_health()
                return
            time.sleep(0.02)
    raise AssertionError("the replica did not catch up")


@pytest.fixture
def shop(alpha_committed):
    """alpha with 30 customers of the test's own, 10 on the test's plan."""
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        Customer.objects.bulk_create([Customer(external_id=f"{tag}-{i}", plan=tag if i % 3 == 0 else "free")
                                      for i in range(30)])
    caught_up()
    return tenant, tag


def test_a_preview_counts_on_the_replica(shop):
    tenant, tag = shop
    with schema_context(tenant.schema_name):
        with CaptureQueriesContext(connections["replica"]) as on_replica, CaptureQueriesContext(connection) as on_primary:
            result = preview(actor=SYSTEM, definition=plan_is(tag), now=NOW)
        with replica_reads() as db, db.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery(), current_schema()")
            assert (db.alias, cursor.fetchone()) == ("replica", (True, tenant.schema_name))
    assert result.count == 10 and result.exact
    assert any("customers_customer" in q["sql"] for q in on_replica.captured_queries)
    assert not any("customers_customer" in q["sql"] for q in on_primary.captured_queries)


def test_the_replica_follows_the_tenant(shop):
    """beta has customers on the same plan; each tenant's preview counts only its own."""
    tenant, tag = shop
    beta = Tenant.objects.get(slug="beta")
    with schema_context(beta.schema_name):
        Customer.objects.bulk_create([Customer(external_id=f"{tag}-b{i}", plan=tag) for i in range(4)])
    try:
        caught_up()
        with schema_context(tenant.schema_name):
            assert preview(actor=SYSTEM, definition=plan_is(tag), now=NOW).count == 10
        with schema_context(beta.schema_name):
            assert preview(actor=SYSTEM, definition=plan_is(tag), now=NOW).count == 4
        with schema_context(tenant.schema_name):
            assert preview(actor=SYSTEM, definition=plan_is(tag), now=NOW).count == 10
    finally:
        with schema_context(beta.schema_name):
            Customer.objects.filter(external_id__startswith=tag).delete()


def test_reports_read_on_the_replica(shop):
    tenant, tag = shop
    with schema_context(tenant.schema_name):
        everyone = Customer.objects.count()
        with CaptureQueriesContext(connections["replica"]) as on_replica:
            report = segment_kpis(query=KpiQuery(segments=(), conversion=None), now=datetime.now(timezone.utc))
    assert report.rows[-1].size == everyone
    assert len(on_replica.captured_queries) >= 2  # the cache's fingerprint and the KPI statement


def test_writes_inside_replica_reads_go_to_the_primary(shop):
    tenant, tag = shop
    with schema_context(tenant.schema_name):
        with replica_reads() as db:
            assert db.alias == "replica"
            Customer.objects.create(external_id=f"{tag}-written")  # the router sends it to the primary
            with pytest.raises(DatabaseError, match="read-only"), db.cursor() as cursor:
                cursor.execute("UPDATE customers_customer SET plan = 'x' WHERE external_id = %s", [f"{tag}-0"])
        assert Customer.objects.filter(external_id=f"{tag}-written").exists()


def test_a_lagging_replica_is_skipped(shop):
    tenant, tag = shop
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        with schema_context(tenant.schema_name):
            Customer.objects.bulk_create([Customer(external_id=f"{tag}-late{i}", plan=tag) for i in range(5)])
            time.sleep(0.6)
            forget_health()
            with override_settings(REPLICA_MAX_LAG_SECONDS=0.3):
                with replica_reads() as db:
                    assert db.alias == "default"
                # Read on the primary: the customers the replica has not replayed are counted.
                assert preview(actor=SYSTEM, definition=plan_is(tag), now=NOW).count == 15
    finally:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")
    caught_up()
    with schema_context(tenant.schema_name), replica_reads() as db:
        assert db.alias == "replica"


def test_an_unreachable_replica_is_skipped(shop):
    tenant, tag = shop
    replica = connections["replica"]
    replica.close()
    port = replica.settings_dict["PORT"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        replica.settings_dict["PORT"] = str(probe.getsockname()[1])  # nothing listens there once closed
    try:
        forget_health()
        with schema_context(tenant.schema_name):
            with replica_reads() as db:
                assert db.alias == "default"
            assert preview(actor=SYSTEM, definition=plan_is(tag), now=NOW).count == 10
    finally:
        replica.close()
        replica.settings_dict["PORT"] = port
        forget_health()


def test_inside_a_transaction_reads_stay_on_the_primary(shop):
    """The caller may have written what it reads; no replica has seen it yet."""
    tenant, tag = shop
    with schema_context(tenant.schema_name), transaction.atomic():
        Customer.objects.create(external_id=f"{tag}-uncommitted", plan=tag)
        with replica_reads() as db:
            assert db.alias == "default"
        assert preview(actor=SYSTEM, definition=plan_is(tag), now=NOW).count == 11
        transaction.set_rollback(True)
