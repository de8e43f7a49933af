"""Which customer each userId / anonymousId of a batch names (step 2 of customers/ingest/store.py).

Ids that belong together (identify with userId + anonymousId, alias, track with both) are
united; the batch's known ids are matched to customers and those customers' rows locked,
in id order, by one statement; new customers are created together with their identities
by one statement; profiles that turn out to be one person are merged (events, identities,
traits, survey answers and consents move to the survivor; other apps move their rows on
`customers.touch.merged`).

Locking: every customer row a batch writes is locked before it is written, in id order,
so two concurrent batches for overlapping customers queue instead of deadlocking — and
as late as possible, since a lock is held until COMMIT: the lookup takes none; a batch
that merges profiles locks its known customers (FOR UPDATE: losers are deleted) before the
merge; one that sets traits locks its customers before the UPDATE (customers/ingest/store.py);
a track-only batch locks them inside the statement that stores its events. FOR NO KEY
UPDATE where nothing is deleted: it does not block the foreign-key checks (FOR KEY SHARE)
of another batch's event inserts. A customer merged away between the lookup and its lock
makes the batch run again (ResolutionRace); `ingest_messages` also reruns a batch whose
event insert met a customer deleted meanwhile (a foreign-key violation).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from customers.ingest.message import ANON_PREFIX, Message
from customers.ingest.sql import cursor, json_list
from customers import touch
from segments.rules.vocabulary import BUILTIN_TRAITS

Pair = tuple[str, str]  # (kind, value): ("user_id", "u-1") or ("anonymous_id", "a-1")


class ResolutionRace(Exception):
    """A customer the batch found vanished before it could be locked or used (merged away
    meanwhile): the batch is run again."""


@dataclass
class Resolved:
    mapping: dict[Pair, int]
    created: int = 0
    merged: int = 0
    locked: set[int] = field(default_factory=set)  # customers this batch holds: locked or created
    survivors: set[int] = field(default_factory=set)  # customers other profiles were merged into


def resolve(messages: list[Message], now: datetime) -> Resolved:
    """{(kind, value): customer id} for every id in the batch, creating and merging customers."""
    existing = lookup({pair for m in messages for pair in _candidate_ids(m)})
    groups = _groups(messages, existing)
    # Only a group of several ids can merge or rename a profile: only those need external ids.
    externals = external_ids({existing[i] for ids in groups if len(ids) > 1 for i in ids if i in existing})
    resolved = Resolved(mapping={})
    to_create: list[tuple[str, list[Pair]]] = []
    merges: list[tuple[int, list[int]]] = []
    renames: dict[int, str] = {}
    new_pairs: dict[Pair, int] = {}  # ids not yet attached to the customer they now name
    for ids in groups:
        if len(ids) == 1 and ids[0] in existing:  # the common case: one id, known
            resolved.mapping[ids[0]] = existing[ids[0]]
            continue
        known = {(existing[i], externals[existing[i]]) for i in ids if i in existing}
        if not known:
            to_create.append((_external_id_for(ids), ids))
            continue
        # The survivor: a profile known by a user id (not an anonymous placeholder), else the oldest.
        survivor, survivor_external = min(known, key=lambda c: (c[1].startswith(ANON_PREFIX), c[0]))
        losers = sorted(c for c, _ in known if c != survivor)
        if losers:
            merges.append((survivor, losers))
        new_user_ids = sorted(v for k, v in ids if k == "user_id" and ("user_id", v) not in existing)
        if survivor_external.startswith(ANON_PREFIX) and new_user_ids:
            renames[survivor] = new_user_ids[0]
        for pair in ids:
            resolved.mapping[pair] = survivor
            if pair not in existing:  # a loser's identities move with _merge
                new_pairs[pair] = survivor
    created, taken = _create(to_create, now)
    for external_id, ids in to_create:
        customer = created.get(external_id) or taken.get(external_id)
        if customer is None:
            raise ResolutionRace(external_id)
        for pair in ids:
            resolved.mapping[pair] = customer
            if external_id in taken:  # created by another batch: its identities are not attached yet
                new_pairs[pair] = customer
    resolved.created = len(created)
    resolved.locked |= set(created.values())
    if merges or renames:
        resolved.locked |= lock_customers(set(existing.values()) | set(taken.values()), mode="UPDATE")
    for survivor, losers in merges:
        _merge(survivor, losers, now)
        resolved.merged += len(losers)
        resolved.survivors.add(survivor)
    _rename(renames)
    _attach(new_pairs, now)
    return resolved


# ------------------------------------------------------------------------------ grouping


class _Union:
    def __init__(self) -> None:
        self.parent: dict[Pair, Pair] = {}

    def find(self, item: Pair) -> Pair:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: Pair, b: Pair) -> None:
        self.parent[self.find(a)] = self.find(b)


def _candidate_ids(message: Message) -> list[Pair]:
    ids = []
    if message.user_id:
        ids.append(("user_id", message.user_id))
    if message.anonymous_id:
        ids.append(("anonymous_id", message.anonymous_id))
    if message.type == "alias" and message.previous_id:
        # previousId may be an anonymous id or an earlier user id: look up both.
        ids += [("user_id", message.previous_id), ("anonymous_id", message.previous_id)]
    return ids


def _ids_of(message: Message, existing: dict) -> list[Pair]:
    ids = []
    if message.user_id:
        ids.append(("user_id", message.user_id))
    if message.anonymous_id:
        ids.append(("anonymous_id", message.anonymous_id))
    if message.type == "alias" and message.previous_id:
        known = [p for p in (("user_id", message.previous_id), ("anonymous_id", message.previous_id)) if p in existing]
        ids += known or [("anonymous_id", message.previous_id)]
    return ids


def _groups(messages: list[Message], existing: dict) -> list[list[Pair]]:
    """The batch's ids as groups that name one person each. Most messages carry one id:
    those skip the union-find (it was a third of the Python time of a track batch)."""
    union = _Union()
    singles: dict[Pair, None] = {}  # insertion-ordered set
    for message in messages:
        ids = _ids_of(message, existing)
        if len(ids) == 1:
            singles[ids[0]] = None
        for pair in ids[1:]:
            union.union(pair, ids[0])
    members: dict[Pair, list[Pair]] = defaultdict(list)
    for pair in list(union.parent):
        members[union.find(pair)].append(pair)
    return list(members.values()) + [[pair] for pair in singles if pair not in union.parent]


def _external_id_for(ids: list[Pair]) -> str:
    users = sorted(v for k, v in ids if k == "user_id")
    return users[0] if users else ANON_PREFIX + sorted(v for _, v in ids)[0]


# ------------------------------------------------------------------------------ statements

# Known ids → customers, from the identities alone (a customer's row is read only when a
# merge needs it); `lookup_locked` also locks those customers' rows in id order (LockRows
# runs above the Sort). Lists arrive as JSON text (see customers.ingest.sql.json_list).
_PAIRS = "ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) AS p(kind, value)"
_LOOKUP = f"""
SELECT p.kind, p.value, i.customer_id
FROM {_PAIRS} JOIN customers_customeridentity i ON i.kind = p.kind AND i.value = p.value
"""
_LOOKUP_LOCKED = f"""
SELECT p.kind, p.value, c.id, c.external_id
FROM {_PAIRS} JOIN customers_customeridentity i ON i.kind = p.kind AND i.value = p.value
JOIN customers_customer c ON c.id = i.customer_id
ORDER BY c.id FOR NO KEY UPDATE OF c
"""
# A join, not `id = ANY(…)`: on a small table the planner picks a seq scan that tests every
# row against the whole list.
_LOCK = """
SELECT c.id FROM customers_customer c JOIN json_array_elements_text(%s::json) AS v(id) ON c.id = v.id::bigint
ORDER BY c.id FOR {mode} OF c
"""

# A new customer's built-in traits are all missing (NULL): their columns take their default.
_NEW_CUSTOMER_COLUMNS = "external_id, anonymous_ids, traits, created_at, updated_at"
_NEW_CUSTOMER_VALUES = "'{}', '{}'"

# New customers and their identities in one statement. ON CONFLICT covers a customer
# another batch (or the CSV import, or the API) created meanwhile: it is not returned,
# and `_create` fetches it. TRICKY: a statement cannot see that row (it committed after
# the statement's snapshot), hence the second statement.
_CREATE = f"""
WITH created AS (
    INSERT INTO customers_customer ({_NEW_CUSTOMER_COLUMNS})
    SELECT x, {_NEW_CUSTOMER_VALUES}, %(now)s, %(now)s
    FROM json_array_elements_text(%(externals)s::json) AS x ORDER BY x
    ON CONFLICT (external_id) DO NOTHING
    RETURNING id, external_id
), attached AS (
    INSERT INTO customers_customeridentity (customer_id, kind, value, created_at)
    SELECT created.id, p.kind, p.value, %(now)s
    FROM ROWS FROM (json_array_elements_text(%(kinds)s::json), json_array_elements_text(%(values)s::json),
                    json_array_elements_text(%(owners)s::json)) AS p(kind, value, owner)
    JOIN created ON created.external_id = p.owner
    ORDER BY p.kind, p.value
    ON CONFLICT (kind, value) DO UPDATE SET customer_id = EXCLUDED.customer_id
)
SELECT external_id, id FROM created
"""

_TAKEN = """
SELECT external_id, id FROM customers_customer
WHERE external_id IN (SELECT json_array_elements_text(%s::json))
"""

_ATTACH = """
INSERT INTO customers_customeridentity (customer_id, kind, value, created_at)
SELECT p.customer::bigint, p.kind, p.value, %s
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json),
                json_array_elements_text(%s::json)) AS p(customer, kind, value)
ORDER BY p.kind, p.value
ON CONFLICT (kind, value) DO UPDATE SET customer_id = EXCLUDED.customer_id
"""


def lookup(pairs: set[Pair]) -> dict[Pair, int]:
    """{(kind, value): customer id} of the known ids, nothing locked. Prepared: planning
    it took ~2 ms of every tracking batch."""
    return {(row[0], row[1]): row[2] for row in _lookup(_LOOKUP, pairs, prepare=True)}


def lookup_locked(pairs: set[Pair]) -> dict[Pair, tuple[int, str]]:
    """{(kind, value): (customer id, external id)}, those customers' rows locked in id order
    (FOR NO KEY UPDATE: to update, never to delete). Planned per run: its callers' batches
    are large (the CSV import), and the plan follows the table's growth."""
    return {(row[0], row[1]): (row[2], row[3]) for row in _lookup(_LOOKUP_LOCKED, pairs, prepare=False)}


def _lookup(statement: str, pairs: set[Pair], *, prepare: bool) -> list[tuple]:
    if not pairs:
        return []
    ordered = sorted(pairs)
    with cursor() as cur:
        cur.execute(statement, [json_list(k for k, _ in ordered), json_list(v for _, v in ordered)], prepare=prepare)
        return cur.fetchall()


def external_ids(customers: set[int]) -> dict[int, str]:
    """{customer id: external id}; ResolutionRace if one has gone since the lookup."""
    if not customers:
        return {}
    with cursor() as cur:
        cur.execute("SELECT c.id, c.external_id FROM customers_customer c "
                    "JOIN json_array_elements_text(%s::json) AS v(id) ON c.id = v.id::bigint", [json_list(customers)])
        found = dict(cur.fetchall())
    if len(found) != len(customers):
        raise ResolutionRace(sorted(customers - set(found))[:3])
    return found


def lock_customers(ids: set[int], *, mode: str = "NO KEY UPDATE") -> set[int]:
    """Lock these customers' rows in id order; ResolutionRace if one has gone (merged away
    since the lookup). `mode`: "NO KEY UPDATE" to update, "UPDATE" to delete."""
    if not ids:
        return set()
    assert mode in ("NO KEY UPDATE", "UPDATE")
    with cursor() as cur:
        cur.execute(_LOCK.format(mode=mode), [json_list(sorted(ids))])
        locked = {customer for (customer,) in cur.fetchall()}
    if locked != ids:
        raise ResolutionRace(sorted(ids - locked)[:3])
    return locked


def _create(to_create: list[tuple[str, list[Pair]]], now: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """({external id: id} created here, {external id: id} another batch had created)."""
    if not to_create:
        return {}, {}
    externals = sorted({external for external, _ in to_create})
    attach = sorted((kind, value, external) for external, ids in to_create for kind, value in ids)
    with cursor() as cur:
        cur.execute(_CREATE, {"now": now, "externals": json_list(externals),
                              "kinds": json_list(a[0] for a in attach), "values": json_list(a[1] for a in attach),
                              "owners": json_list(a[2] for a in attach)}, prepare=True)
        created = dict(cur.fetchall())
        missing = [external for external in externals if external not in created]
        taken = {}
        if missing:
            cur.execute(_TAKEN, [json_list(missing)])
            taken = dict(cur.fetchall())
    return created, taken


def _attach(pairs: dict[Pair, int], now: datetime) -> None:
    if not pairs:
        return
    rows = sorted((kind, value, customer) for (kind, value), customer in pairs.items())
    with cursor() as cur:
        cur.execute(_ATTACH, [now, json_list(r[2] for r in rows), json_list(r[0] for r in rows),
                              json_list(r[1] for r in rows)])


# The survivor's built-ins win where present (not NULL); last_seen_at is the later of both.
_MERGED_COLUMNS = tuple(key for key in BUILTIN_TRAITS if key != "last_seen_at")


def _merge(survivor: int, losers: list[int], now: datetime) -> None:
    """Fold `losers` into `survivor`: their events, identities, survey answers and consent
    history move; the survivor's own traits win and the losers fill in what it lacks; per
    consent channel the latest answer of any of them stands. Other rooms move theirs
    (customers.touch.merged) before the losers are deleted."""
    fill = ", ".join(f"{col} = COALESCE(s.{col}, l.{col})" for col in _MERGED_COLUMNS)
    with cursor() as cur:
        cur.execute("UPDATE customers_event SET customer_id = %s WHERE customer_id = ANY(%s)", [survivor, losers])
        cur.execute("UPDATE customers_customeridentity SET customer_id = %s WHERE customer_id = ANY(%s)",
                    [survivor, losers])
        cur.executemany(
            f"UPDATE customers_customer s SET {fill}, traits = l.traits || s.traits, "
            "anonymous_ids = s.anonymous_ids || l.anonymous_ids, last_seen_at = GREATEST(s.last_seen_at, l.last_seen_at), "
            "updated_at = now() FROM customers_customer l WHERE s.id = %s AND l.id = %s",
            [(survivor, loser) for loser in losers],
        )
        _move_answers(cur, survivor, losers)
        touch.merged(survivor=survivor, losers=list(losers), now=now)
        cur.execute("DELETE FROM customers_customer WHERE id = ANY(%s)", [losers])


# The latest answer per channel among the profiles stands (a withdrawal after a grant on
# another device is a withdrawal), the rest go; the history keeps every answer.
_CONSENT_LATEST = """
DELETE FROM customers_consent c WHERE c.customer_id = ANY(%(everyone)s) AND EXISTS (
    SELECT 1 FROM customers_consent n WHERE n.customer_id = ANY(%(everyone)s) AND n.channel = c.channel
      AND (n.changed_at, n.id) > (c.changed_at, c.id))
"""


def _move_answers(cur, survivor: int, losers: list[int]) -> None:
    params = {"survivor": survivor, "losers": losers, "everyone": [survivor, *losers]}
    for table in ("customers_surveyresponse", "customers_consentchange"):
        cur.execute(f"UPDATE {table} SET customer_id = %(survivor)s WHERE customer_id = ANY(%(losers)s)", params)
    cur.execute(_CONSENT_LATEST, params)
    cur.execute("UPDATE customers_consent SET customer_id = %(survivor)s WHERE customer_id = ANY(%(losers)s)", params)
    # Computed from the facts, which are the survivor's now: its next refresh counts them.
    cur.execute("DELETE FROM customers_customermetrics WHERE customer_id = ANY(%(losers)s)", params)
    cur.execute("DELETE FROM customers_generatortruth WHERE customer_id = ANY(%(losers)s)", params)


def _rename(renames: dict[int, str]) -> None:
    if renames:
        with cursor() as cur:
            cur.executemany("UPDATE customers_customer SET external_id = %s WHERE id = %s",
                            [(external, customer) for customer, external in renames.items()])
