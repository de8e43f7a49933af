"""Rate limits per key, counted in Redis: fixed windows (`600/m` = 600 requests a minute),
one counter per (bucket, window) in the tenant's cache, so two tenants' keys never share
a counter (django-tenants' make_key puts the schema in every key).

A fixed window lets a client spend its whole allowance at a window's end and again at the
next one's start (at most twice the rate for an instant); in exchange a hit is one Redis
round trip and the answer to "when may I retry?" is exact: the window's end.

When Redis cannot be reached the request passes (logged): a limit protects the service,
and refusing every request because the counter is down would be the outage it prevents.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.core.cache import cache

logger = structlog.get_logger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")


@dataclass(frozen=True)
class Limit:
    requests: int
    seconds: int

    @classmethod
    def parse(cls, spec: str) -> Limit:
        """`<count>/<s|m|h>`, e.g. `1000/s`; a configuration error raises ValueError."""
        found = _SPEC.match(spec or "")
        if not found or int(found.group(1)) < 1:
            raise ValueError(f"a rate limit is <count>/<s|m|h>, e.g. 600/m, not {spec!r}")
        return cls(int(found.group(1)), UNITS[found.group(2)])


def configured(name: str) -> Limit:
    """The limit named in settings.RATE_LIMITS (e.g. "lookup")."""
    return Limit.parse(settings.RATE_LIMITS[name])


def hit(*, bucket: str, limit: Limit, now: float) -> int | None:
    """Count one request against `bucket`; None when it is within the limit, else the
    whole seconds until the window ends (the Retry-After)."""
    window = int(now // limit.seconds)
    try:
        count = _count(f"ratelimit:{bucket}:{limit.seconds}:{window}", limit.seconds + 1)
    except Exception as exc:  # Redis down: let it through, say so
        logger.warning("rate_limit_unavailable", bucket=bucket, error=f"{type(exc).__name__}: {exc}"[:200])
        return None
    if count <= limit.requests:
        return None
    return max(1, math.ceil((window + 1) * limit.seconds - now))


def hit_reading(*, bucket: str, limit: Limit, now: float, keys: list[str]) -> tuple[int | None, dict]:
    """`hit`, and in the same round trip the cache values of `keys` (as cache.get_many
    gives them): a request that must count itself and then read the cache pays one trip."""
    window = int(now // limit.seconds)
    counter = cache.make_key(f"ratelimit:{bucket}:{limit.seconds}:{window}")
    made = [cache.make_key(key) for key in keys]
    client = cache._cache.get_client(counter, write=True)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.set(counter, 0, ex=limit.seconds + 1, nx=True)
            pipe.incr(counter)
            pipe.mget(made)
            _, count, values = pipe.execute()
    except Exception as exc:  # Redis down: no limit, nothing cached (the caller reads the database)
        logger.warning("rate_limit_unavailable", bucket=bucket, error=f"{type(exc).__name__}: {exc}"[:200])
        return None, {}
    loads = cache._cache._serializer.loads
    found = {key: loads(value) for key, value in zip(keys, values) if value is not None}
    if count <= limit.requests:
        return None, found
    return max(1, math.ceil((window + 1) * limit.seconds - now)), found


def _count(key: str, ttl: int) -> int:
    """Give a new counter its expiry and INCR it, in one round trip (a pipeline; SET NX
    leaves a running window's counter and expiry alone, and works on Redis 6.2, the
    embedded server, where EXPIRE NX does not). TRICKY: Django's Redis cache has no
    pipeline of its own; its client for the key is used, under the cache's key function
    (so the tenant's schema is in the key)."""
    full = cache.make_key(key)
    client = cache._cache.get_client(full, write=True)
    with client.pipeline(transaction=False) as pipe:
        pipe.set(full, 0, ex=ttl, nx=True)
        pipe.incr(full)
        _, count = pipe.execute()
    return count
