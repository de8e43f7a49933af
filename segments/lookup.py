"""Membership lookup for the tenant's own product (a Profiles-style API): which segments a
user is in now, since when, and the traits the workspace exposes (TraitDefinition.exposed;
never a personal one).

Answers come from the tenant's cache (Redis; every key carries the schema) and are kept
fresh without expiry-guessing:

- each customer has a *generation*; an answer is stored with the generation it was read
  at, and served only while that is still the customer's. Whatever changes the answer
  sets a new generation, so a stored answer is never served once stale — including one
  written by a request that read the database just before the change committed (it
  carries the old generation);
- the engine's outbox (entered/exited rows) is consumed by `lookup_sync`, queued when an
  evaluation commits and swept each minute, which moves the generations of the customers
  it names; ingestion's hand-off (`customers_touched`) does it for changed traits;
- a workspace-wide *epoch* in every key drops all answers at once: a segment archived or
  deleted, profiles merged; the exposed traits' version (customers.registry) does the same
  when a trait's exposure changes.

Which customer an id names is read from the database each time (an index lookup): a
merge or an erasure is then never answered for.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

import orjson
from django.core.cache import cache
from django.db import connection, transaction

from apikeys.selectors import CREDENTIALS_COLUMNS, LookupCredentials, credentials_from
from customers.models import TraitDefinition
from customers.registry import EXPOSED_TRAITS_VERSION
from customers.touch import Touch
from ops.tasking import send_to_tenant
from segments.rules.vocabulary import BUILTIN_TRAITS

ANSWER_TTL = 3600
GENERATION_TTL = 2 * 86400  # outlives every answer stored under it
SYNC_BATCH = 10_000
SYNC_TASK = "segments.lookup_sync"
_spaces: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Profile:
    customer_id: int
    segments: list[tuple[str, str]]  # (key, entered_at ISO), by key
    traits: dict

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ reading


_CUSTOMER_SQL = {
    "user_id": "SELECT COALESCE((SELECT customer_id FROM customers_customeridentity WHERE kind = 'user_id' "
               "AND value = %s), (SELECT id FROM customers_customer WHERE external_id = %s))",
    "anonymous_id": "SELECT customer_id FROM customers_customeridentity WHERE kind = 'anonymous_id' AND value = %s",
}


def customer_for(*, user_id: str | None = None, anonymous_id: str | None = None) -> int | None:
    """The customer a userId (its identity, else the external id) or an anonymousId names.
    Not cached: one statement on two unique indexes, and never wrong after a merge or an
    erasure."""
    with connection.cursor() as cursor:
        if user_id is not None:
            cursor.execute(_CUSTOMER_SQL["user_id"], [user_id, user_id])
        else:
            cursor.execute(_CUSTOMER_SQL["anonymous_id"], [anonymous_id])
        row = cursor.fetchone()
    return row[0] if row else None


def caller_and_customer(*, key: str, user_id: str | None = None,
                        anonymous_id: str | None = None) -> tuple[LookupCredentials | None, int | None]:
    """A lookup key's credentials and the customer the id names, in one statement (both are
    needed on every lookup; the customer is revealed only once the key and signature pass)."""
    if not key or len(key) > 64:
        return None, None
    kind, value = ("user_id", user_id) if user_id is not None else ("anonymous_id", anonymous_id)
    params = [value, value] if kind == "user_id" else [value]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {CREDENTIALS_COLUMNS}, ({_CUSTOMER_SQL[kind]}) "
                       "FROM (SELECT 1) one LEFT JOIN apikeys_lookupkey k ON k.key = %s", [*params, key])
        row = cursor.fetchone()
    return credentials_from(row), row[3]


def answer_keys(customer_id: int) -> list[str]:
    """The cache keys a customer's answer is read with: the versions it must carry (the
    workspace's epoch, the exposed traits' and the customer's generation), then the answer."""
    return [scoped("epoch"), EXPOSED_TRAITS_VERSION, _generation_key(customer_id), scoped(f"answer:{customer_id}")]


def profile_of(customer_id: int, found: dict | None = None) -> tuple[Profile, bool]:
    """The customer's answer and whether it came from the cache. `found`: what answer_keys
    already read (the view reads them in its rate limiter's round trip); else one round
    trip reads them. A stored answer whose versions differ is stale."""
    *names, answer_key = answer_keys(customer_id)
    found = cache.get_many([*names, answer_key]) if found is None else found
    versions = [str(found.get(name) or "0") for name in names]
    stored = found.get(answer_key)
    if stored is not None and stored.get("versions") == versions:
        return Profile(**stored["profile"]), True
    answer = _read(customer_id)
    cache.set(answer_key, {"versions": versions, "profile": answer.as_dict()}, ANSWER_TTL)
    return answer, False


# A miss in one statement: the open memberships of live segments (by key), the exposed
# non-personal trait keys, and the customer's row as JSON to take their values from (no
# row: the customer was deleted since its id was resolved).
_READ_SQL = """
SELECT l.keys, l.times, x.exposed, to_jsonb(c)
FROM customers_customer c
CROSS JOIN LATERAL (
    SELECT COALESCE(array_agg(s.key ORDER BY s.key), '{}') AS keys,
           COALESCE(array_agg(m.entered_at ORDER BY s.key), '{}') AS times
    FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id
    WHERE m.customer_id = c.id AND m.exited_at IS NULL AND s.status <> 'archived'
) l
CROSS JOIN (SELECT COALESCE(array_agg(key ORDER BY key), '{}') AS exposed FROM customers_traitdefinition
            WHERE exposed AND NOT is_pii) x
WHERE c.id = %s
"""


def _read(customer_id: int) -> Profile:
    with connection.cursor() as cursor:
        cursor.execute(_READ_SQL, [customer_id])
        found = cursor.fetchone()
    if found is None:
        return Profile(customer_id=customer_id, segments=[], traits={})
    keys, times, exposed, row = found
    row = orjson.loads(row) if isinstance(row, str) else row  # Django leaves jsonb as text
    custom = row.get("traits") or {}
    traits = {key: row.get(key) if key in BUILTIN_TRAITS else custom.get(key) for key in exposed}
    return Profile(customer_id=customer_id, segments=[(key, at.isoformat()) for key, at in zip(keys, times)],
                   traits=traits)


def exposed_trait_keys() -> list[str]:
    return list(TraitDefinition.objects.filter(exposed=True, is_pii=False).order_by("key").values_list("key", flat=True))


def scoped(name: str) -> str:
    """A lookup key in this database and schema: a recreated schema (a restore, a test run)
    starts ids again, and what was stored before must not answer for the new rows."""
    where = (connection.settings_dict["NAME"], connection.schema_name)
    if where not in _spaces:
        with connection.cursor() as cursor:
            cursor.execute("SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
                           "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())")
            _spaces[where] = "{}.{}".format(*cursor.fetchone())
    return f"lookup:{_spaces[where]}:{name}"


def _generation_key(customer_id: int) -> str:
    return scoped(f"generation:{customer_id}")


# ------------------------------------------------------------------------------ keeping fresh


def lookup_forget(customer_ids) -> None:
    """Drop the stored answers of these customers (a new generation each)."""
    ids = list(customer_ids)
    for start in range(0, len(ids), SYNC_BATCH):
        token = uuid.uuid4().hex[:12]
        cache.set_many({_generation_key(cid): token for cid in ids[start:start + SYNC_BATCH]}, GENERATION_TTL)


def lookup_forget_all() -> None:
    """Drop every stored answer and identity of the workspace (a new epoch)."""
    cache.set(scoped("epoch"), uuid.uuid4().hex[:12], None)


def customers_touched(touch: Touch) -> None:
    """customers.touch's handler, after a write commits: their traits may have changed.
    Events alone change only last_seen_at: their answers stay unless that is exposed (the
    common batch then costs one indexed read instead of a write per customer)."""
    if touch.traits or touch.merged or touch.surveys or touch.channels or _last_seen_exposed():
        lookup_forget(touch.customer_ids)


def _last_seen_exposed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM customers_traitdefinition WHERE key = 'last_seen_at' AND exposed)")
        return cursor.fetchone()[0]


def customers_merged(*, survivor: int, losers: list[int], now: datetime) -> None:
    """customers.touch's merge handler, in the merge's transaction: the losers' identities
    now name the survivor. Once it commits, every stored identity and answer goes."""
    transaction.on_commit(lookup_forget_all)


def sync_soon() -> None:
    """Queue one lookup_sync for this tenant once the current transaction commits, unless
    one is queued and has not started yet (a burst of evaluations queues one sync)."""
    def queue():
        if cache.add(scoped("sync-queued"), True, 60):
            send_to_tenant(SYNC_TASK, schema_name=connection.schema_name)
    transaction.on_commit(queue)


def sync_started() -> None:
    """The queued sync runs: changes committed from now on queue the next one."""
    cache.delete(scoped("sync-queued"))


def lookup_sync() -> int:
    """Consume the outbox since the last call: every customer who entered or exited a
    segment gets a new generation. Returns the rows consumed.

    One cursor per segment: the engine changes a segment's memberships holding its row
    lock, so a segment's outbox rows commit in id order; across segments they need not (a
    single cursor could pass a row still being committed and never see it). The cursors
    live beside the answers: if the cache is emptied, both go, and this starts from now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM segments_segment ORDER BY id")
        segment_ids = [row[0] for row in cursor.fetchall()]
        if cache.get(scoped("started")) is None:  # first run, or the cache was emptied
            cursor.execute("SELECT segment_id, max(id) FROM segments_membershipchange GROUP BY segment_id")
            cache.set_many({_cursor_key(segment): last for segment, last in cursor.fetchall()}, None)
            lookup_forget_all()
            cache.set(scoped("started"), True, None)
            return 0
        cursors = cache.get_many([_cursor_key(segment) for segment in segment_ids])
        consumed = 0
        for segment in segment_ids:
            at = cursors.get(_cursor_key(segment), 0)
            while True:
                cursor.execute("SELECT id, customer_id FROM segments_membershipchange WHERE segment_id = %s AND id > %s "
                               "ORDER BY id LIMIT %s", [segment, at, SYNC_BATCH])
                rows = cursor.fetchall()
                if not rows:
                    break
                lookup_forget({customer_id for _, customer_id in rows})
                at = rows[-1][0]
                cache.set(_cursor_key(segment), at, None)
                consumed += len(rows)
    return consumed


def _cursor_key(segment_id: int) -> str:
    return scoped(f"cursor:{segment_id}")
