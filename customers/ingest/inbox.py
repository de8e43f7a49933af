"""Tracking requests are acknowledged once their items are stored as sent; a merge stores them.

A 20-event request taken through the whole write path (identities, the store statement, the
registries, the hand-off to segments) costs ~10 ms of CPU, nearly all of it fixed per request
(bench/sdk_load.py). So the tracking endpoints only check the items and `accept` them: one
row per request in the tenant's inbox (customers_inboxbatch), durable at COMMIT, which is
what the client's 200 means. `merge` then stores hundreds of requests' items at once with
the set-based statements of customers/ingest/store.py:

- one merger per tenant at a time (a transaction-scoped advisory lock), taking the oldest
  waiting rows up to MERGE_ITEMS items, so items are stored in the order they arrived
  (later traits win, as within a batch); the rows are deleted in the transaction that stores
  their items, so a merger that dies leaves them waiting, and retried requests are stored
  once (messageId);
- a chunk that fails on its data is merged again row by row, and a row that still fails is
  set aside (`failed_at`, `error`, logged) so it cannot hold up the rows behind it.

When the merge runs (settings.TRACKING_MERGE): "queued" — a Celery task per tenant, queued
after the accepting commit unless one is queued already (a Redis flag set NX, as
segments.touches does), which drains the inbox; at once for a tenant whose last merge
found one request waiting, after TRACKING_MERGE_DELAY for one whose requests pile up (so
they are stored together); the minute's sweep merges what a lost message left.
"inline" — the accepting request merges the inbox itself before it commits (the test
suite, a single-process deployment).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson
import redis
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from customers.ingest.gc import collector_paused
from customers.ingest.message import Message
from customers.ingest.sql import cursor
from customers.ingest.store import ingest_messages
from ops import telemetry
from ops.tasking import send_to_tenant

logger = structlog.get_logger(__name__)

MERGE_TASK = "customers.merge_inbox"
MERGE_ITEMS = 2_000  # items per merge transaction (a request's items are never split)
FLAG_SECONDS = 120  # a queued merge's flag; a lost message is re-queued by the sweep after it expires
BUSY_SECONDS = 2  # how long a tenant counts as busy after a merge found several requests waiting
# The tenant's waiting items as the merge last counted them (cache key, read by the tracking
# view with its rate limit): past settings.TRACKING_INBOX_LIMIT requests are refused (503,
# Retry-After) until the merge catches up, so a backlog, and the freshness it costs, stays bounded.
BACKLOG_KEY = "inbox:backlog"
BACKLOG_SECONDS = 30  # a merger that stopped counting stops refusing after this long
SOURCE = "tracking"
# Errors that are about the items themselves: the same items would fail again.
_BAD_DATA = (DataError, IntegrityError, ValueError, TypeError, KeyError)

_FIELDS = (("y", "type"), ("m", "message_id"), ("u", "user_id"), ("a", "anonymous_id"), ("e", "event"),
           ("p", "properties"), ("r", "traits"), ("v", "previous_id"))


# ------------------------------------------------------------------------------ accepting


def _encoded(messages: list[Message]) -> str:
    items = []
    for message in messages:
        item = {key: getattr(message, name) for key, name in _FIELDS if getattr(message, name)}
        item["t"] = message.timestamp
        items.append(item)
    try:
        return orjson.dumps(items).decode()
    except TypeError:  # integers past 64 bits: only the json module writes those
        # TRICKY: with json.dumps' default separators, which orjson never writes (its output is
        # compact): _decoded reads such a row with the json module, which keeps them exact.
        return json.dumps(items, default=lambda value: value.isoformat())


_EXACT = '[{"y": '  # how a row json.dumps wrote begins (every item's first key is "y")


def _decoded(text: str, received_at: datetime) -> list[Message]:
    # Not common.jsonvalues.loads: its scan for long integers in what a client sent took a
    # fifth of the merge's time, and the inbox holds only what _encoded wrote.
    items = json.loads(text) if text.startswith(_EXACT) else orjson.loads(text)
    messages = []
    for index, item in enumerate(items):
        message = Message(type=item["y"], timestamp=datetime.fromisoformat(item["t"]), index=index,
                          path=f"[{index}]", received_at=received_at)
        for key, name in _FIELDS[1:]:
            if key in item:
                setattr(message, name, item[key])
        messages.append(message)
    return messages


def accept(*, messages: list[Message], received_at: datetime) -> None:
    """Store the request's valid items in the inbox and have them merged after the commit."""
    if not messages:
        return
    with cursor() as cur:
        cur.execute("INSERT INTO customers_inboxbatch (received_at, items, messages, error) VALUES (%s, %s, %s, '')",
                    [received_at, len(messages), _encoded(messages)], prepare=True)
    if settings.TRACKING_MERGE == "inline":
        merge(clock=timezone.now)  # in the accepting transaction: stored when it commits
    else:
        transaction.on_commit(queue_merge)


def _flag() -> tuple[object, str]:
    key = cache.make_key("inbox:queued")  # the tenant's schema is in the key (django-tenants' key function)
    # TRICKY: Django's cache has no SET NX EX with a raw value; its client is used, as segments.touches does.
    return cache._cache.get_client(key, write=True), key


def _busy_key() -> str:
    return cache.make_key("inbox:busy")


def _busy_mark() -> None:
    """Requests came faster than one merge each: the next merges wait TRACKING_MERGE_DELAY
    to gather more (an idle tenant's merge runs at once)."""
    try:
        client, _ = _flag()
        client.set(_busy_key(), b"1", ex=BUSY_SECONDS)
    except redis.RedisError:
        pass


def queue_merge() -> None:
    """Queue a merge for the current tenant unless one is queued. The items are stored
    already: when the broker cannot be reached the request still succeeds (a client told
    otherwise would send them again) and the minute's sweep merges them."""
    busy = False
    try:
        client, key = _flag()
        with client.pipeline(transaction=False) as pipe:
            pipe.set(key, b"1", nx=True, ex=FLAG_SECONDS)
            pipe.exists(_busy_key())
            flagged, busy = pipe.execute()
        if not flagged:
            return
    except redis.RedisError:
        pass  # no flag: queue one anyway (a merge of an empty inbox is one statement)
    try:
        send_to_tenant(MERGE_TASK, schema_name=connection.schema_name,
                       countdown=(settings.TRACKING_MERGE_DELAY or None) if busy else None)
    except Exception as error:  # noqa: BLE001 - the broker's errors, whatever its transport: nothing is lost
        logger.warning("inbox_merge_not_queued", error=f"{type(error).__name__}: {error}"[:200])
        merge_started()  # the next request tries again, rather than the flag's expiry


def merge_queued() -> bool:
    try:
        client, key = _flag()
        return bool(client.exists(key))
    except redis.RedisError:
        return False


def merge_started() -> None:
    """Called by the merge task before it drains: whatever is accepted from now on queues
    the next merge."""
    try:
        client, key = _flag()
        client.delete(key)
    except redis.RedisError:
        pass  # the flag expires by itself


# ------------------------------------------------------------------------------ merging

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('strata.inbox'), hashtext(current_schema()))"
_TAKE = """
DELETE FROM customers_inboxbatch WHERE id IN (
    SELECT id FROM (
        SELECT id, sum(items) OVER (ORDER BY id) - items AS before
        FROM (SELECT id, items FROM customers_inboxbatch WHERE failed_at IS NULL ORDER BY id LIMIT 1000) AS oldest
    ) AS w
    WHERE before < %s)
RETURNING id, received_at, items, messages
"""


def merge(*, clock: Callable[[], datetime], budget: timedelta | None = None) -> tuple[int, bool]:
    """Store what waits in the tenant's inbox, a chunk per transaction, until it is empty or
    `budget` has passed; returns (items merged — stored, duplicates or refused alike —,
    whether the inbox was emptied)."""
    merged, started = 0, clock()
    while budget is None or clock() - started < budget:
        with transaction.atomic():
            with cursor() as cur:
                cur.execute(_LOCK)
                cur.execute(_TAKE, [MERGE_ITEMS])
                rows = sorted(cur.fetchall())
            if not rows:
                if merged:
                    _backlog_clear()
                return merged, True
            if len(rows) > 1 and settings.TRACKING_MERGE == "queued":
                _busy_mark()
                _backlog_note()
            with collector_paused():  # thousands of messages at once: see customers/ingest/gc.py
                merged += _merge_chunk(rows, clock)
    return merged, False


def _backlog_note() -> None:
    _, items = waiting()
    try:
        cache.set(BACKLOG_KEY, items, BACKLOG_SECONDS)
    except redis.RedisError:
        pass


def backlogged(found: dict) -> bool:
    """Whether the backlog read with the rate limit (BACKLOG_KEY in `found`) is past the limit."""
    return found.get(BACKLOG_KEY, 0) > settings.TRACKING_INBOX_LIMIT


def _merge_chunk(rows: list[tuple], clock: Callable[[], datetime]) -> int:
    try:
        with transaction.atomic():
            messages = [m for _, received_at, _, text in rows for m in _decoded(text, received_at)]
            ingest_messages(messages=messages, source=SOURCE, now=clock())
        return len(messages)
    except _BAD_DATA:
        if len(rows) == 1:
            _set_aside(rows[0], clock)
            return 0
    return sum(_merge_chunk([row], clock) for row in rows)


def _set_aside(row: tuple, clock: Callable[[], datetime]) -> None:
    """Keep a row that cannot be stored, with why, out of the merges' way."""
    batch_id, received_at, items, text = row
    error = traceback.format_exc(limit=3)[-2000:]
    logger.error("inbox_batch_set_aside", batch_id=batch_id, received_at=received_at.isoformat(), error=error)
    telemetry.inbox_set_aside(tenant=connection.schema_name)
    with cursor() as cur:
        cur.execute("INSERT INTO customers_inboxbatch (id, received_at, items, messages, failed_at, error) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [batch_id, received_at, items, text, clock(), error])


def _backlog_clear() -> None:
    try:
        cache.delete(BACKLOG_KEY)
    except redis.RedisError:
        pass


def waiting() -> tuple[int, int]:
    """(requests, items) waiting in the current tenant's inbox, set-aside ones not counted."""
    with cursor() as cur:
        cur.execute("SELECT count(*), COALESCE(sum(items), 0) FROM customers_inboxbatch WHERE failed_at IS NULL")
        requests, items = cur.fetchone()
    return requests, int(items)


def set_aside() -> list[tuple[int, datetime, int, datetime, str]]:
    """The current tenant's set-aside batches, oldest first: (id, received_at, items, failed_at, error)."""
    with cursor() as cur:
        cur.execute("SELECT id, received_at, items, failed_at, error FROM customers_inboxbatch "
                    "WHERE failed_at IS NOT NULL ORDER BY id")
        return cur.fetchall()


def set_aside_retry(*, clock: Callable[[], datetime]) -> tuple[int, int]:
    """Put the set-aside batches back in line (after the fault that stopped them is fixed)
    and merge; returns (batches put back, items merged)."""
    with cursor() as cur:
        cur.execute("UPDATE customers_inboxbatch SET failed_at = NULL, error = '' WHERE failed_at IS NOT NULL")
        put_back = cur.rowcount
    merged, _ = merge(clock=clock)
    return put_back, merged
