"""New data waits for its re-check in Redis, one list per tenant, and one check takes it all.

A busy tenant writes hundreds of batches a second; a check queued per batch would put as
many messages before every other tenant's on the freshness queue, and check the same
segments hundreds of times. Instead each write's Touch is appended to the tenant's pending
list, and a check is queued only when none is waiting (a flag set with NX): however fast a
tenant writes, it has at most one check queued, and that check covers everything written
before it started.

The check clears the flag before it takes the list (anything written after will queue the
next check), and takes it by renaming it to a key of its own: a check whose worker dies is
redelivered with the same id and finds what it had taken. The flag expires, and the
scheduler's minute sweep (`stranded`) queues a check for a list nobody will take.
"""

from __future__ import annotations

import orjson
import redis
from django.core.cache import cache

from customers.touch import Touch

# A queued check's flag: longer than a healthy queue's wait, short enough that touches whose
# check message was lost (a purged queue) are re-queued by the minute's sweep within minutes.
# A queue lagging past it gets a second check for the tenant: still bounded, one per period.
FLAG_SECONDS = 120
TAKEN_SECONDS = 86_400


def _client(key: str):
    # TRICKY: Django's cache has no lists; its client for the key is used, under the cache's
    # key function (the tenant's schema is in every key), as common.ratelimit does.
    return cache._cache.get_client(key, write=True)


def _keys(check_id: str | None = None) -> tuple[str, str, str | None]:
    return (cache.make_key("touches:pending"), cache.make_key("touches:queued"),
            cache.make_key(f"touches:taken:{check_id}") if check_id else None)


def pending_add(touch: Touch) -> bool:
    """Append the touch to the tenant's pending ones; True when no check is queued yet
    (the caller queues one). Raises when Redis cannot be reached."""
    pending, queued, _ = _keys()
    with _client(pending).pipeline(transaction=True) as pipe:
        pipe.rpush(pending, orjson.dumps(touch.as_payload()))
        pipe.set(queued, b"1", nx=True, ex=FLAG_SECONDS)
        _, flagged = pipe.execute()
    return bool(flagged)


def take(*, check_id: str) -> Touch | None:
    """Everything pending, combined (None: nothing), moved under this check's own key."""
    pending, queued, taken = _keys(check_id)
    client = _client(pending)
    client.delete(queued)
    if not client.exists(taken):  # a redelivered check already holds its part
        try:
            client.rename(pending, taken)
        except redis.ResponseError as error:  # "no such key": nothing was pending
            if "no such key" not in str(error).lower():
                raise
            return None
        client.expire(taken, TAKEN_SECONDS)
    payloads = client.lrange(taken, 0, -1)
    return Touch.combined(Touch.from_payload(orjson.loads(p)) for p in payloads) if payloads else None


def done(*, check_id: str) -> None:
    _, _, taken = _keys(check_id)
    _client(taken).delete(taken)


def stranded() -> bool:
    """Whether touches wait with no check queued (its message lost); if so, flag one now:
    True tells the caller to queue it."""
    pending, queued, _ = _keys()
    client = _client(pending)
    return bool(client.exists(pending)) and bool(client.set(queued, b"1", nx=True, ex=FLAG_SECONDS))
