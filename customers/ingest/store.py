"""The write path for customer data: a batch of normalised messages in, set-based SQL out.

Every way in (tracking endpoints, REST API, CSV import) turns its input into `Message`s and
calls `ingest_messages` once per batch, inside one transaction:

1. traits are checked against the registry (one query); an item with a bad trait is
   refused as a whole, with a path per problem — the other items go on;
2. identities are resolved for the whole batch (customers/ingest/identities.py, which also
   says when rows are locked): known ids are matched to customers by one statement, new
   customers are created with their identities by one statement, profiles of one person
   are merged;
3. traits are applied per customer with one statement shape (pipelined executemany);
4. one statement inserts the events (sent as one JSON array), storing only those whose
   message id is new (how retries are deduplicated), advances last_seen_at and
   upserts the event registry from what was inserted;
5. the trait registry is upserted once per new key.

A steady-state track batch (every customer known) is 3 round trips: lookup, store
(which locks), COMMIT. Statements go through `customers.ingest.sql.cursor()`, which binds parameters
on the server and prepares the per-batch shapes (see there).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from django.db import IntegrityError, OperationalError, connection, transaction

from customers.ingest.identities import ResolutionRace, lock_customers, resolve
from customers.ingest.message import ItemProblem, Message
from customers.ingest.sql import cursor as _cursor
from customers.touch import Touch, touched
from ops import telemetry
from segments.rules.vocabulary import BUILTIN_TRAITS, TraitType, check_value, flatten, infer_type, key_problem

EVENT_TYPES = {"track", "page", "screen"}
TRAIT_TYPES = {"identify", "group"}
PAGE_EVENT, SCREEN_EVENT = "page_viewed", "screen_viewed"
__all__ = ["IngestResult", "ItemProblem", "Message", "ingest_messages"]
# Built-in columns and the SQL that reads each from a JSON document of changes.
_COLUMN_SQL = {
    "email": "doc->>'email'", "name": "doc->>'name'", "gender": "doc->>'gender'",
    "income_band": "doc->>'income_band'", "occupation": "doc->>'occupation'", "country": "doc->>'country'",
    "region": "doc->>'region'", "city": "doc->>'city'", "language": "doc->>'language'",
    "timezone": "doc->>'timezone'", "company": "doc->>'company'", "industry": "doc->>'industry'",
    "device_type": "doc->>'device_type'", "os": "doc->>'os'", "plan": "doc->>'plan'",
    "birth_date": "(doc->>'birth_date')::timestamptz::date",
    "signed_up_at": "(doc->>'signed_up_at')::timestamptz", "last_seen_at": "(doc->>'last_seen_at')::timestamptz",
    "company_size": "(doc->>'company_size')::numeric::integer", "annual_revenue": "(doc->>'annual_revenue')::numeric",
    "email_opt_in": "(doc->>'email_opt_in')::boolean",
    "tech_stack": "CASE WHEN jsonb_typeof(doc->'tech_stack') = 'array' "
                  "THEN ARRAY(SELECT jsonb_array_elements_text(doc->'tech_stack')) END",
}


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    customers_created: int = 0
    customers_merged: int = 0
    problems: list[ItemProblem] = field(default_factory=list)


# ------------------------------------------------------------------------------ traits


def _registry(keys: set[str]) -> dict[str, str]:
    if not keys:
        return {}
    with _cursor() as cursor:
        cursor.execute("SELECT key, type FROM customers_traitdefinition WHERE key = ANY(%s)", [list(keys)])
        return dict(cursor.fetchall())


def _check_traits(messages: list[Message], result: IngestResult) -> tuple[list[Message], dict[str, str]]:
    """Messages whose traits all fit the registry (normalised in place) and the types of
    custom keys seen for the first time."""
    for message in messages:
        message.traits = flatten(message.traits)
    registry = _registry({k for m in messages for k in m.traits})
    new_keys: dict[str, str] = {}
    kept = []
    for message in messages:
        problems = []
        for key, value in message.traits.items():
            bad_key = key_problem(key)
            if bad_key:
                problems.append(ItemProblem(message.index, f"{message.path}.traits.{key}", bad_key.code, bad_key.message))
                continue
            known = registry.get(key) or new_keys.get(key)
            trait_type = TraitType(known) if known else infer_type(value)
            if trait_type is None:
                continue  # null for a never-seen key: nothing to register or store
            normalised, problem = check_value(value, trait_type, key)
            if problem:
                problems.append(ItemProblem(message.index, f"{message.path}.traits.{key}", problem.code, problem.message))
            else:
                message.traits[key] = normalised
                if not known:
                    new_keys[key] = trait_type.value
        if problems:
            result.problems.extend(problems)
        else:
            kept.append(message)
    return kept, new_keys


def _register_traits(new_keys: dict[str, str], now: datetime) -> None:
    if not new_keys:
        return
    with _cursor() as cursor:
        cursor.executemany(
            "INSERT INTO customers_traitdefinition (key, type, category, description, is_pii, is_builtin, "
            "first_seen_at, created_at, updated_at) VALUES (%s, %s, 'behavioral', '', false, false, %s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING",
            [(key, type_, now, now, now) for key, type_ in sorted(new_keys.items())],
        )


# ------------------------------------------------------------------------------ traits


def _apply_traits(messages: list[Message], owners: list[int], now: datetime) -> None:
    """Later messages win; built-ins go to their columns, the rest into `traits` (JSONB).
    One statement shape for every customer, so psycopg pipelines the executemany."""
    changes: dict[int, dict[str, Any]] = defaultdict(dict)
    for message, owner in zip(messages, owners):
        if message.traits and message.type in TRAIT_TYPES:
            changes[owner].update(message.traits)
    if not changes:
        return
    sets = ", ".join(
        f"{col} = CASE WHEN doc ? '{col}' THEN {sql} ELSE {col} END"  # JSON null → NULL: missing
        for col, sql in _COLUMN_SQL.items()
    )
    rows = []
    for customer, traits in sorted(changes.items()):
        builtin = {k: v for k, v in traits.items() if k in BUILTIN_TRAITS}
        custom = {k: v for k, v in traits.items() if k not in BUILTIN_TRAITS}
        rows.append((json.dumps(builtin), json.dumps(custom), now, customer))
    with _cursor() as cursor:
        cursor.executemany(
            f"UPDATE customers_customer SET {sets}, traits = jsonb_strip_nulls(traits || custom), updated_at = %s "
            "FROM (SELECT %s::jsonb AS doc, %s::jsonb AS custom) AS v WHERE id = %s",
            [(now, builtin, custom, customer) for builtin, custom, now, customer in rows],
        )


# ------------------------------------------------------------------------------ events


def _event_name(message: Message) -> str:
    if message.type == "page":
        return PAGE_EVENT
    if message.type == "screen":
        return SCREEN_EVENT
    return message.event or ""


# How a batch's counts for an event name merge into its registry row (also the generator's).
EVENT_REGISTRY_MERGE = """
    ON CONFLICT (name) DO UPDATE SET
        first_seen_at = LEAST(customers_eventdefinition.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = GREATEST(customers_eventdefinition.last_seen_at, EXCLUDED.last_seen_at),
        volume = customers_eventdefinition.volume + EXCLUDED.volume,
        properties = EXCLUDED.properties || customers_eventdefinition.properties,
        updated_at = EXCLUDED.updated_at
"""


# One statement stores the batch's events and does their upkeep. The events arrive as one
# JSON array (orjson writes a 500-event batch in ~0.2 ms; a temporary table filled by COPY
# took two more round trips, a row-by-row write in Python and a DELETE afterwards).
# Data-modifying CTEs all see the same snapshot, and each works from what `inserted`
# returns (only new events count):
# - fresh, inserted: a message id is stored in customers_eventmessage first (ON CONFLICT DO
#   NOTHING) and its event only if the id was new there: how retries are deduplicated (the
#   events table is partitioned by month, so it cannot hold a unique index on the id alone).
#   Within the batch the first of two equal ids wins (_insert_events drops the second);
# - locked, seen: last_seen_at per customer, the rows locked in id order first (LockRows
#   above the Sort; a batch that set traits holds them already). Locking here, not before,
#   keeps a track batch's locks for the length of this statement and the COMMIT only: a
#   concurrent batch for the same customers waits that long, not for the whole batch. A
#   customer already seen later than these events is neither locked nor written.
#   TRICKY: `seen` reads the row as of the statement's snapshot; if another batch updated
#   it since, PostgreSQL re-checks the condition on the newest version (READ COMMITTED).
# - registry: one upsert per event name, in name order; property types come from Python
#   as {name: {property: type}} and types already registered win.
# Not prepared: its plan joins customers_customer, and a generic plan made while a new
# workspace's tables are nearly empty would stay a sequential scan until the next ANALYZE.
_STORE_EVENTS = """
WITH batch AS MATERIALIZED (
    SELECT * FROM json_to_recordset(%(events)s::json) AS e(c bigint, n text, t timestamptz, p jsonb, m text, r timestamptz)
), fresh AS (
    INSERT INTO customers_eventmessage (message_id, timestamp)
    SELECT m, t FROM batch WHERE m IS NOT NULL ORDER BY m
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id
), inserted AS (
    INSERT INTO customers_event (customer_id, name, timestamp, properties, message_id, received_at, source)
    SELECT e.c, e.n, e.t, e.p, e.m, COALESCE(e.r, %(now)s), %(source)s
    FROM batch e WHERE e.m IS NULL OR e.m IN (SELECT message_id FROM fresh)
    RETURNING customer_id, name, timestamp
), locked AS (
    SELECT c.id, v.ts
    FROM customers_customer c
    -- A future-dated event does not make the customer seen later than it was received.
    JOIN (SELECT customer_id, LEAST(max(timestamp), %(now)s) AS ts FROM inserted GROUP BY customer_id) AS v
      ON v.customer_id = c.id
    WHERE c.last_seen_at IS NULL OR c.last_seen_at < v.ts
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
), seen AS (
    UPDATE customers_customer c SET last_seen_at = locked.ts
    FROM locked
    WHERE c.id = locked.id AND (c.last_seen_at IS NULL OR c.last_seen_at < locked.ts)
), registry AS (
    INSERT INTO customers_eventdefinition (name, first_seen_at, last_seen_at, volume, properties,
                                           created_at, updated_at)
    SELECT name, min(timestamp), max(timestamp), count(*), COALESCE(%(types)s::jsonb -> name, '{}'),
           %(now)s, %(now)s
    FROM inserted GROUP BY name ORDER BY name
""" + EVENT_REGISTRY_MERGE + """)
SELECT count(*) FROM inserted
"""


def _insert_events(messages: list[Message], owners: list[int], source: str, now: datetime) -> int:
    """Store the batch's events with _STORE_EVENTS (dedupe by messageId, last_seen_at, the
    event registry). Returns how many were new."""
    events, ids = [], set()
    for message, owner in zip(messages, owners):
        if message.type not in EVENT_TYPES:
            continue
        if message.message_id is not None:
            if message.message_id in ids:
                continue  # a batch that repeats a message: the first is the one stored
            ids.add(message.message_id)
        events.append({"c": owner, "n": _event_name(message), "t": message.timestamp, "p": message.properties,
                       "m": message.message_id, "r": message.received_at})
    if not events:
        return 0
    with _cursor() as cursor:
        cursor.execute(_STORE_EVENTS, {"events": _json_text(events), "types": _json_text(_property_types(messages)),
                                       "now": now, "source": source})
        (inserted,) = cursor.fetchone()
    return inserted


def _json_text(value: Any) -> str:
    """JSON text of a parameter: orjson (json.dumps is ~10x slower); datetimes as ISO 8601
    with their offset (orjson writes aware ones that way natively)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what only the json module writes, e.g. integers beyond 64 bits
        return json.dumps(value, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _property_types(messages: list[Message]) -> dict[str, dict[str, str]]:
    """{event name: {property: type}} inferred from the batch (a null says nothing yet)."""
    types: dict[str, dict[str, str]] = defaultdict(dict)
    for message in messages:
        if message.type not in EVENT_TYPES:
            continue
        known = types[_event_name(message)]
        for key, value in message.properties.items():
            if key not in known:
                inferred = infer_type(value)
                if inferred is not None:
                    known[key] = inferred.value
    return types


# ------------------------------------------------------------------------------ entry point


RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
# foreign_key_violation: an event for a customer merged away (deleted) by a concurrent batch
# between this batch's lookup and its insert; the rerun finds the survivor.
RETRYABLE_INTEGRITY = {"23503"}
ATTEMPTS = 3


def ingest_messages(*, messages: list[Message], source: str, now: datetime) -> IngestResult:
    """Store a batch in the current tenant's schema. Items with problems are reported and
    skipped; the rest are stored together or not at all. A batch that loses a lock race
    with a concurrent one is rolled back and run again (bounded)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # A retry may reuse the messages: trait normalisation is idempotent.
            result = _ingest_once(messages=messages, source=source, now=now)
            telemetry.ingest_counted(source=source, tenant=connection.schema_name, accepted=result.accepted,
                                     duplicates=result.duplicates, rejected=[p.code for p in result.problems])
            return result
        except OperationalError as error:
            code = getattr(error.__cause__, "sqlstate", None)
            if code not in RETRYABLE or attempt == ATTEMPTS:
                raise
        except IntegrityError as error:
            code = getattr(error.__cause__, "sqlstate", None)
            if code not in RETRYABLE_INTEGRITY or attempt == ATTEMPTS:
                raise
        except ResolutionRace:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def refusals(messages: list[Message]) -> tuple[list[Message], list[ItemProblem]]:
    """What `ingest_messages` would refuse, found without writing: (the messages it would
    store, the others' problems). `messages` are left as they were (their traits unnormalised)."""
    result = IngestResult()
    copies = [replace(message) for message in messages]  # _valid normalises the copies' traits
    kept = {id(copy) for copy in _valid(copies, result)[0]}
    return [m for m, copy in zip(messages, copies) if id(copy) in kept], result.problems


def _valid(messages: list[Message], result: IngestResult) -> tuple[list[Message], dict[str, str]]:
    """The messages that name someone and whose traits fit the registry (normalised in
    place), and the custom keys seen for the first time; the others' problems into `result`."""
    named = [m for m in messages if m.user_id or m.anonymous_id]
    for message in messages:
        if not (message.user_id or message.anonymous_id):
            result.problems.append(ItemProblem(message.index, f"{message.path}.userId", "required",
                                               "Send a userId or an anonymousId."))
    return _check_traits(named, result)


@transaction.atomic
def _ingest_once(*, messages: list[Message], source: str, now: datetime) -> IngestResult:
    result = IngestResult()
    valid, new_keys = _valid(messages, result)
    if not valid:
        return result
    resolved = resolve(valid, now)
    result.customers_created += resolved.created
    result.customers_merged += resolved.merged
    owners = [_owner(m, resolved.mapping) for m in valid]
    _register_traits(new_keys, now)
    if any(m.traits and m.type in TRAIT_TYPES for m in valid):  # rows about to be updated: lock them first
        lock_customers(set(owners) - resolved.locked)
    _apply_traits(valid, owners, now)
    inserted = _insert_events(valid, owners, source, now)
    events = sum(1 for m in valid if m.type in EVENT_TYPES)
    result.duplicates = events - inserted
    result.accepted = len(valid) - result.duplicates
    _announce(valid, owners, resolved.survivors, now)
    return result


def _owner(message: Message, mapping: dict[tuple[str, str], int]) -> int:
    """The customer a message is about: the one its userId names, else its anonymousId's."""
    if message.user_id:
        return mapping[("user_id", message.user_id)]
    return mapping[("anonymous_id", message.anonymous_id)]


def _announce(messages: list[Message], owners: list[int], survivors: set[int], now: datetime) -> None:
    """Hand over which customers this batch touched, and with what (customers.touch: after
    the commit; a rolled-back attempt announces nothing). A merge's
    survivor took over other profiles' events, traits, answers and consents: any of its
    facts may have changed, whatever the batch said."""
    events, traits = defaultdict(set), defaultdict(set)
    for message, owner in zip(messages, owners):
        if message.type in EVENT_TYPES:
            events[_event_name(message)].add(owner)
        for key in message.traits:
            traits[key].add(owner)
    touched(Touch.of(customer_ids=owners, events=events, traits=traits, merged=survivors))
