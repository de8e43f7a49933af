"""Which workspace a host names, remembered per process.

Every request used to read the domain and its tenant from the database (~1 ms of a 3 ms
lookup). Now each process remembers host → tenant for up to ROUTE_SECONDS, and a single
Redis key, the routing *version*, says when what it remembers is stale: any save or delete
of a Tenant or a Domain writes a new version (apps.py connects the receivers), so a
suspended or renamed workspace, a domain moved or removed, is seen by every process at its
next request. Reading the version is one Redis GET; when Redis cannot be reached, routing
reads the database as before.

The key is global (not per tenant: routing happens before a tenant is known) and carries
the database's name, so two databases on one Redis (development and tests) never share it.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable

import redis
import structlog
from django.conf import settings
from django.db import connection, transaction

ROUTE_SECONDS = 60  # a backstop: a change made behind the models' back is seen within a minute
logger = structlog.get_logger(__name__)
_routes: dict[str, tuple[str, float, object]] = {}  # host → (version, remembered at, tenant)
_lock = threading.Lock()
_client: redis.Redis | None = None


def _redis() -> redis.Redis | None:
    global _client
    if _client is None and settings.REDIS_URL:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _client


def _version_key() -> str:
    return f"strata:routing:{connection.settings_dict['NAME']}"


def _version() -> str | None:
    try:
        client = _redis()
        value = client.get(_version_key()) if client is not None else None
    except redis.RedisError as error:
        logger.warning("routing_version_unavailable", error=str(error)[:200])
        return None
    return value.decode() if value else "0"


def routed(hostname: str, load: Callable[[], object]):
    """The tenant `hostname` names: remembered while the version holds, else `load()`ed.
    Each request gets its own copy (the middleware sets attributes on it)."""
    if connection.in_atomic_block:
        # Inside a transaction (a test's, or a caller's) the rows may be uncommitted, and a
        # rollback sends no signal: read them, remember nothing.
        return load()
    version, now = _version(), time.monotonic()
    if version is None:
        return load()
    found = _routes.get(hostname)
    if found is not None and found[0] == version and now - found[1] < ROUTE_SECONDS:
        return copy.copy(found[2])
    tenant = load()
    with _lock:
        _routes[hostname] = (version, now, tenant)
    return copy.copy(tenant)


def routing_changed(**kwargs) -> None:
    """A Tenant or Domain was saved or deleted: once that commits, every process forgets
    its routes (a rollback changed nothing, and inside a transaction nothing is remembered)."""
    transaction.on_commit(_bump)


def _bump() -> None:
    try:
        client = _redis()
        if client is not None:
            client.set(_version_key(), uuid.uuid4().hex[:12])
    except redis.RedisError as error:
        logger.warning("routing_version_unavailable", error=str(error)[:200])
    with _lock:
        _routes.clear()
