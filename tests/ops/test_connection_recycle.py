"""A worker's database connection is closed after it has served WORKER_SCHEMAS_PER_CONNECTION
tenant schemas, so its PostgreSQL backend does not cache every tenant's catalog."""

from celery.signals import task_postrun
from django.db import connection

from ops import tasking
from tenants.models import Tenant


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_connection_is_closed_after_enough_schemas(committed_db, settings):
    tenant, other_tenant = Tenant.objects.get(slug="alpha"), Tenant.objects.get(slug="beta")
    settings.WORKER_SCHEMAS_PER_CONNECTION = 2
    tasking._schemas_served.clear()
    connection.set_tenant(tenant)
    first = backend_pid()
    assert tasking.connection_recycle() is False
    assert tasking.connection_recycle() is False  # the same schema again: still one
    connection.set_tenant(other_tenant)
    backend_pid()
    assert tasking.connection_recycle() is True and connection.connection is None
    connection.set_tenant(tenant)
    assert backend_pid() != first  # a fresh backend
    assert tasking._schemas_served == set()


def test_every_finished_task_counts_its_schema(committed_db, settings):
    tenant = Tenant.objects.get(slug="alpha")
    settings.WORKER_SCHEMAS_PER_CONNECTION = 100
    tasking._schemas_served.clear()
    connection.set_tenant(tenant)
    task_postrun.send(sender=None)
    assert tasking._schemas_served == {tenant.schema_name}
    tasking._schemas_served.clear()


def test_a_finished_task_keeps_a_healthy_connection_and_drops_an_obsolete_one(committed_db, settings):
    """As around a request: a task's connection is reused until CONN_MAX_AGE (close_at)
    has passed, rather than opened afresh for every task."""
    import time

    settings.WORKER_SCHEMAS_PER_CONNECTION = 100
    connection.set_tenant(Tenant.objects.get(slug="alpha"))
    first = backend_pid()
    connection.close_at = time.monotonic() + 60  # what CONN_MAX_AGE=60 sets on connecting
    task_postrun.send(sender=None)
    assert backend_pid() == first
    connection.close_at = time.monotonic() - 1
    task_postrun.send(sender=None)
    assert connection.connection is None
    assert backend_pid() != first
    tasking._schemas_served.clear()
