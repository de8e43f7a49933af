"""Shared fixtures.

Tenant schemas are created once per session (each runs every tenant migration): `tenant`
and `other_tenant` for isolation tests. Tests run inside a transaction (`db`), except
those that need a second connection — a real Celery worker or a live server — which use
`committed_db` and clean up after themselves.

TRICKY: never use pytest-django's `transactional_db`/`live_server` here: their flush
truncates the public tables and would delete the session tenants.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.db import connection
from django.test import Client
from django.test.testcases import LiveServerThread

from tenants.models import Tenant, TenantMembership, User

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker, django_db_modify_db_settings):
    """The test database and the session's tenants, built once.

    TRICKY: pytest-django's own django_db_setup creates the test database only when a
    collected test asks for `db`; a run of only worker or browser tests (which use
    `committed_db`) would then have touched the development database.
    """
    from django.test.utils import setup_databases, teardown_databases

    from tenants.services import public_tenant_ensure, tenant_create

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        public_tenant_ensure()
        tenant_create(slug="alpha", name="Alpha Co", admin_email="admin@alpha.test", admin_password=PASSWORD)
        tenant_create(slug="beta", name="Beta Ltd", admin_email="admin@beta.test", admin_password=PASSWORD)
    yield
    with django_db_blocker.unblock():
        connection.close()
        try:
            teardown_databases(config, verbosity=0)
        except Exception as error:  # a worker thread's connection may linger; next run recreates it
            print(f"test database not dropped: {error}")


@pytest.fixture(autouse=True)
def _public_schema_after_test():
    yield
    connection.set_schema_to_public()  # sets the search path lazily; no query


@pytest.fixture
def tenant(db) -> Tenant:
    return Tenant.objects.get(slug="alpha")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return Tenant.objects.get(slug="beta")


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Autocommit database access, visible to other threads (worker, live server)."""
    with django_db_blocker.unblock():
        assert connection.settings_dict["NAME"].startswith("test_"), "refusing to commit to a non-test database"
        yield
        connection.set_schema_to_public()


@pytest.fixture
def alpha_committed(committed_db):
    """alpha with committed data, for tests with a worker or a second connection: `tag`
    prefixes the test's segment keys, campaign names and external ids, and whatever carries
    it is deleted afterwards."""
    import uuid

    from django_tenants.utils import schema_context

    from campaigns.models import Campaign
    from customers.models import Customer
    from segments.models import Segment

    tenant = Tenant.objects.get(slug="alpha")
    tag = f"w-{uuid.uuid4().hex[:8]}"
    yield tenant, tag
    with schema_context(tenant.schema_name):
        Campaign.objects.filter(name__startswith=tag).delete()
        Segment.objects.filter(key__startswith=tag).delete()
        Customer.objects.filter(external_id__startswith=tag).delete()


@pytest.fixture
def in_tenant(tenant):
    """Run the test body inside the `alpha` schema (as a task or request would)."""
    connection.set_tenant(tenant)
    yield tenant
    connection.set_schema_to_public()


def host_of(tenant: Tenant) -> str:
    return tenant.get_primary_domain().domain


@pytest.fixture
def public_client(db) -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def tenant_client(tenant) -> Client:
    return Client(HTTP_HOST=host_of(tenant))


def make_member(tenant: Tenant, email: str, role: str = "viewer") -> User:
    from tenants.services import membership_set, user_get_or_create

    user = user_get_or_create(email=email, password=PASSWORD)
    membership_set(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def member_client(tenant) -> Client:
    """A logged-in viewer of `alpha` on alpha's host."""
    user = make_member(tenant, "viewer@alpha.test")
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(user)
    return client


def session(tenant: Tenant, role: str = "admin") -> Client:
    """A browser session on the tenant's host: its admin, or a new member of `role`."""
    client = Client(HTTP_HOST=host_of(tenant))
    if role == "admin":
        client.force_login(membership_of(tenant, f"admin@{tenant.slug}.test").user)
    else:
        client.force_login(make_member(tenant, f"{role}@{tenant.slug}.test", role))
    return client


def membership_of(tenant: Tenant, email: str) -> TenantMembership:
    return TenantMembership.objects.select_related("role", "user", "department").get(tenant=tenant, user__email=email)


@pytest.fixture
def alpha_admin(in_tenant) -> TenantMembership:
    """alpha's first admin, with the connection in alpha's schema (as in a request)."""
    return membership_of(in_tenant, "admin@alpha.test")


@pytest.fixture(scope="module")
def strata_server(django_db_setup, django_db_blocker):
    """A live server thread serving committed data (pytest-django's live_server would
    flush the database; see the module docstring)."""
    with django_db_blocker.unblock():
        thread = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        previous_port = settings.PUBLIC_PORT
        settings.PUBLIC_PORT = str(thread.port)  # links between public site and subdomains
        try:
            yield thread
        finally:
            settings.PUBLIC_PORT = previous_port
            thread.terminate()


@pytest.fixture
def celery_worker(committed_db):
    """A real Celery worker thread consuming the test queue on the real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    queues = purge_queues()  # messages a crashed earlier run may have left
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING",
                      queues=queues) as worker:
        yield worker


def purge_queues() -> list[str]:
    """Empty every Celery queue of the test broker (tasks queued by tests without a worker
    wait there); returns their names."""
    from django.conf import settings

    from config.celery import app

    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, *settings.TASK_QUEUES]
    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_purge(queue)
    from django.core.cache import cache

    from ops import telemetry

    telemetry.backlog_forget()  # what was purged will never start
    # Every tenant's pending touches and check flags (segments.touches) and queued-merge flags
    # (customers.ingest.inbox): a flag left by a test without a worker would keep the next
    # test's writes from queueing their check or merge.
    client = cache._cache.get_client(write=True)
    stale = [*client.scan_iter(match="*touches:*", count=1000), *client.scan_iter(match="*inbox:*", count=1000)]
    if stale:
        client.delete(*stale)
    return queues


_touches: list[dict] = []


def record_touch(touch) -> None:
    """A touch handler for tests (the `touched` fixture names it in the settings)."""
    _touches.append(touch.as_payload())


@pytest.fixture
def touched(settings):
    """The Touch payloads handed over during the test (after their commit), beside the
    configured handlers."""
    _touches.clear()
    settings.CUSTOMER_TOUCH_HANDLERS = [*settings.CUSTOMER_TOUCH_HANDLERS, "tests.conftest.record_touch"]
    yield _touches
    _touches.clear()
