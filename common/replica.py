"""Read-only analytical statements on a PostgreSQL streaming replica.

Live counts (segment previews) and reports read millions of rows and write nothing; on a
replica they stop competing with ingestion and evaluation for the primary's CPU and cache.
`replica_reads()` hands out the connection such a statement should use:

- the `replica` alias (settings: DATABASE_REPLICA_URL) when it is configured, reachable and
  no further behind than REPLICA_MAX_LAG_SECONDS — with the current tenant's schema set
  on it, as on the primary;
- otherwise the primary (`django.db.connection`): with no replica, when the replica is down
  or lagging, and inside a transaction on the primary (the caller may read what it has
  just written, which no replica has seen yet).

Inside the block, the ORM's reads go to the same database (`ReplicaRouter`); writes always
go to the primary, and the replica refuses any that reach it (it is in recovery). The
replica's health is probed at most every HEALTH_SECONDS per process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

REPLICA = "replica"
HEALTH_SECONDS = 2.0

logger = structlog.get_logger(__name__)
_reading_from: ContextVar[str | None] = ContextVar("replica_reading_from", default=None)
_health: dict[str, tuple[float, bool]] = {}  # alias → (monotonic time of the probe, usable)

# Replay lag in seconds: 0 when everything received has been replayed (an idle primary sends
# nothing, and the last replayed commit's age would grow without any lag), else the age of
# the last replayed commit. NULL outside recovery (not a replica: no lag).
_LAG_SQL = """
SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 'Infinity') END::float8
"""


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[BaseDatabaseWrapper]:
    """The connection for a read-only analytical statement (see the module's docstring)."""
    if not _usable():
        yield connection
        return
    replica = connections[REPLICA]
    _follow_tenant(replica)
    token = _reading_from.set(REPLICA)
    try:
        yield replica
    finally:
        _reading_from.reset(token)


def replica_lag() -> float | None:
    """The replica's replay lag in seconds now (None: no replica, or unreachable)."""
    if not replica_configured():
        return None
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(_LAG_SQL)
            return cursor.fetchone()[0]
    except DatabaseError:
        connections[REPLICA].close()
        return None


def forget_health() -> None:
    """Probe again at the next read (tests; after a failover)."""
    _health.clear()


def _usable() -> bool:
    if not replica_configured() or connection.in_atomic_block:
        return False
    probed_at, usable = _health.get(REPLICA, (0.0, False))
    if time.monotonic() - probed_at < HEALTH_SECONDS:
        return usable
    lag = replica_lag()
    usable = lag is not None and lag <= settings.REPLICA_MAX_LAG_SECONDS
    if usable != _health.get(REPLICA, (0.0, True))[1]:
        logger.warning("replica_usable" if usable else "replica_skipped", lag_seconds=lag,
                       max_lag_seconds=settings.REPLICA_MAX_LAG_SECONDS)
    _health[REPLICA] = (time.monotonic(), usable)
    return usable


def _follow_tenant(replica: BaseDatabaseWrapper) -> None:
    """The primary connection's schema on the replica's (tenant switching happens at the
    process edges, on the primary's connection; the replica follows it here)."""
    tenant = getattr(connection, "tenant", None)
    if tenant is not None and replica.schema_name != connection.schema_name:
        replica.set_tenant(tenant)


class ReplicaRouter:
    """Reads inside `replica_reads()` go to the replica; writes and migrations never do."""

    def db_for_read(self, model, **hints) -> str | None:
        return _reading_from.get()

    def db_for_write(self, model, **hints) -> str | None:
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return True  # the same rows on both: objects read from either may be related

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool | None:
        return False if db == REPLICA else None
