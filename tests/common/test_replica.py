"""Replica routing where no replica is configured (the real one: tests/test_read_replica.py)."""

from django.db import connection

from common.replica import REPLICA, ReplicaRouter, replica_lag, replica_reads
from customers.models import Customer


def test_without_a_replica_reads_use_the_primary(in_tenant):
    with replica_reads() as db:
        assert db is connection
        assert ReplicaRouter().db_for_read(Customer) is None  # the default database
    assert replica_lag() is None


def test_the_router_never_writes_or_migrates_on_the_replica():
    router = ReplicaRouter()
    assert router.db_for_write(Customer) == "default"
    assert router.allow_migrate(REPLICA, "customers") is False
    assert router.allow_migrate("default", "customers") is None  # left to django-tenants' router


def test_database_replica_url_adds_a_replica_that_mirrors_default_in_tests(monkeypatch):
    from config.settings.stores import replica_databases

    monkeypatch.delenv("DATABASE_REPLICA_URL", raising=False)
    assert replica_databases() == {}
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgres://strata:secret@standby.internal:5433/strata")
    replica = replica_databases()["replica"]
    assert (replica["HOST"], replica["PORT"], replica["NAME"]) == ("standby.internal", 5433, "strata")
    assert replica["ENGINE"] == "django_tenants.postgresql_backend"
    assert replica["TEST"] == {"MIRROR": "default"} and replica["OPTIONS"]["connect_timeout"] == 2
