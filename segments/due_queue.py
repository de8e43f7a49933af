"""Scheduled evaluations share the queue fairly between tenants.

Every minute the dispatcher offers each tenant one `segments.evaluate_due` task. Two rules
keep one tenant's backlog from starving the others:

- at most one such task per tenant is queued or running: the dispatcher claims a flag per
  tenant (SET NX) and skips tenants whose flag is held, so a slow queue does not fill with
  one tenant's copies, minute after minute;
- each task is a slice: it starts evaluations until SEGMENT_DUE_SLICE_SECONDS have passed,
  then queues the rest behind everything already queued (other tenants' slices included)
  and keeps the flag. The last slice releases it.

The flag expires (FLAG_SECONDS), so a task lost with its worker stops holding its tenant back
after that long. Redis unreachable: the dispatcher queues anyway (duplicates are harmless —
evaluations of one segment are serialised by its row lock — a missed schedule is not).
"""

from __future__ import annotations

import redis
import structlog
from django.conf import settings
from django.core.cache import cache

FLAG_SECONDS = 900
logger = structlog.get_logger(__name__)


def _key(schema_name: str) -> str:
    # TRICKY: named by schema, not by the cache's key function (which prefixes the current
    # connection's schema): the dispatcher runs in the public schema, the slices in the tenant's.
    return f"strata:{settings.CACHES['default'].get('KEY_PREFIX', '')}:due-queued:{schema_name}"


def _client():
    return cache._cache.get_client(None, write=True)


def claim(schema_name: str) -> bool:
    """True when the tenant had no slice queued or running (the caller queues one)."""
    try:
        return bool(_client().set(_key(schema_name), b"1", nx=True, ex=FLAG_SECONDS))
    except redis.RedisError as error:
        logger.warning("due_flags_unavailable", error=f"{type(error).__name__}: {error}"[:200])
        return True


def keep(schema_name: str) -> None:
    """A slice queued its continuation: hold the tenant's flag for another FLAG_SECONDS."""
    try:
        _client().set(_key(schema_name), b"1", ex=FLAG_SECONDS)
    except redis.RedisError:
        pass  # the flag expires; at worst the dispatcher queues one more slice


def release(schema_name: str) -> None:
    try:
        _client().delete(_key(schema_name))
    except redis.RedisError:
        pass  # it expires
