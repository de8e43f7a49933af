"""The set-based write of a customers file's chunk: a handful of statements per chunk
instead of one identify message (and one UPDATE) per row through customers.ingest.

Per chunk, in the chunk's transaction (a savepoint of it, see services._write_rows_isolating):

1. custom traits the chunk sets for the first time are registered with the type the
   mapping inferred; the registry's types are read back, and a value that contradicts a
   type registered meanwhile refuses its row (the row's other cells with it);
2. the rows are merged per customer, in file order (a later row wins per trait; an empty
   cell was left out and leaves the trait alone);
3. the customers are found through their identities, like ingestion does (a merged-away
   id names its survivor), and their rows locked in id order — one statement;
4. the merged rows are COPYed into a per-connection temporary table; one statement creates
   the new customers with their values and identities; one statement updates the known
   ones, only where a value differs from what is stored (re-importing a file writes
   nothing and leaves updated_at alone), returning which changed;
5. The customers created or changed are handed over (customers.touch.touched).

Statements are planned per chunk, not prepared: 5,000 rows make planning negligible, and
a generic plan made while a new workspace's tables are nearly empty would stay a
sequential scan over the customers until the next ANALYZE.

Counts: a row is *unchanged* when its customer existed and the chunk changes nothing of
it, else *imported*.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from customers.imports import mapping as maps
from customers.ingest.identities import lookup_locked
from customers.ingest.message import ANON_PREFIX
from customers.ingest.sql import cursor, json_list
from customers.touch import Touch, touched
from segments.rules.vocabulary import BUILTIN_TRAITS, TraitType, check_value



@dataclass
class UpsertResult:
    imported: int = 0
    unchanged: int = 0
    problems: list[tuple[int, str, str, str]] = field(default_factory=list)  # row, column, code, message


@dataclass
class _Customer:
    """One customer's merged rows."""

    external_id: str
    rows: list[int]
    builtin: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    customer_id: int | None = None


def upsert_customers(*, rows: list[tuple[int, dict[str, Any]]], plan: maps.Plan, now: datetime) -> UpsertResult:
    """Write prepared rows ((row number, {target: typed value}), every value checked
    against its column's type) of a customers file."""
    result = UpsertResult()
    rows = _fit_registry(rows, plan, now, result)
    if not rows:
        return result
    customers = _merge_rows(rows, plan, _find({values["external_id"] for _, values in rows}))
    created = _write(customers, now)
    changed = _update(now) if any(c.customer_id is not None for c in customers.values()) else set()
    for customer in customers.values():
        was_written = customer.external_id in created or customer.customer_id in changed
        if was_written:
            result.imported += len(customer.rows)
        else:
            result.unchanged += len(customer.rows)
    changed_ids = set(created.values()) | changed
    traits = defaultdict(set)
    for customer in customers.values():
        customer_id = created.get(customer.external_id, customer.customer_id)
        if customer_id in changed_ids:
            for key in (*customer.builtin, *customer.custom):
                traits[key].add(customer_id)
    touched(Touch.of(customer_ids=changed_ids, traits=traits))
    return result


# ------------------------------------------------------------------------------ registry


def _fit_registry(rows, plan: maps.Plan, now: datetime, result: UpsertResult):
    """Register the chunk's new custom traits (with the mapping's inferred type) and drop
    the rows whose custom values contradict the registry as it is now."""
    column_of = {c.target[len(maps.TRAIT):]: c for c in plan.columns if c.target.startswith(maps.TRAIT)
                 and c.target[len(maps.TRAIT):] not in BUILTIN_TRAITS}
    present = {key for _, values in rows for key in column_of if maps.TRAIT + key in values}
    if not present:
        return rows
    registered = _register(present, {key: column_of[key].type or TraitType.STRING for key in present}, now)
    differing = {key: TraitType(type_) for key, type_ in registered.items() if type_ != column_of[key].type}
    if not differing:
        return rows  # the usual case: every cell was already read as its registered type
    kept = []
    for row, values in rows:
        problems = []
        for key, trait_type in differing.items():
            if maps.TRAIT + key not in values:
                continue
            normalised, problem = check_value(values[maps.TRAIT + key], trait_type, key)
            if problem:
                problems.append((row, column_of[key].name, problem.code, problem.message))
            else:
                values[maps.TRAIT + key] = normalised
        if problems:
            result.problems += problems
        else:
            kept.append((row, values))
    return kept


_REGISTER = """
WITH added AS (
    INSERT INTO customers_traitdefinition (key, type, category, description, is_pii, is_builtin,
                                           first_seen_at, created_at, updated_at)
    SELECT k.key, k.type, 'behavioral', '', false, false, %(now)s, %(now)s, %(now)s
    FROM ROWS FROM (json_array_elements_text(%(keys)s::json), json_array_elements_text(%(types)s::json)) AS k(key, type)
    ORDER BY k.key
    ON CONFLICT (key) DO NOTHING
    RETURNING key, type
)
SELECT key, type FROM added
UNION ALL
SELECT key, type FROM customers_traitdefinition
WHERE key IN (SELECT json_array_elements_text(%(keys)s::json)) AND key NOT IN (SELECT key FROM added)
"""


def _register(keys: set[str], types: dict[str, TraitType], now: datetime) -> dict[str, str]:
    """{key: registered type} for `keys`, registering the missing ones with `types`.
    TRICKY: a key another writer registers between this statement's snapshot and its
    insert is in neither half of the UNION; it is read again by a second statement."""
    ordered = sorted(keys)
    with cursor() as cur:
        cur.execute(_REGISTER, {"now": now, "keys": json_list(ordered),
                                "types": json_list(types[k].value for k in ordered)})
        found = dict(cur.fetchall())
        missing = [key for key in ordered if key not in found]
        if missing:
            cur.execute("SELECT key, type FROM customers_traitdefinition WHERE key = ANY(%s)", [missing])
            found.update(cur.fetchall())
    return found


# ------------------------------------------------------------------------------ rows


def _merge_rows(rows, plan: maps.Plan, known: dict[str, int]) -> dict[Any, _Customer]:
    """One entry per customer: two ids of one person (one merged into the other) are one
    customer, whose later row wins."""
    route = {c.target: (c.target[len(maps.TRAIT):], c.target[len(maps.TRAIT):] in BUILTIN_TRAITS)
             for c in plan.columns if c.target.startswith(maps.TRAIT)}
    customers: dict[Any, _Customer] = {}
    for row, values in rows:
        external_id = values["external_id"]
        key = known.get(external_id, external_id)
        customer = customers.get(key)
        if customer is None:
            customer = customers[key] = _Customer(external_id, [], customer_id=known.get(external_id))
        customer.rows.append(row)
        builtin, custom = customer.builtin, customer.custom
        for target, value in values.items():
            if target in route:
                trait, is_builtin = route[target]
                (builtin if is_builtin else custom)[trait] = value
    return customers


def _pair(external_id: str) -> tuple[str, str]:
    """The identity a file's external id names: "anon:<id>" is an anonymous id."""
    if external_id.startswith(ANON_PREFIX):
        return "anonymous_id", external_id[len(ANON_PREFIX):]
    return "user_id", external_id


def _find(external_ids: set[str]) -> dict[str, int]:
    """{external id: customer id} of the known customers (through identities), their rows
    locked in id order."""
    found = lookup_locked({_pair(external) for external in external_ids})
    return {external: found[_pair(external)][0] for external in external_ids if _pair(external) in found}


# ------------------------------------------------------------------------------ statements

# Built-in columns as the staging table holds them: NULL means "not in the file" (an empty
# cell never clears a trait), so COALESCE keeps what is stored.
_COLUMNS = {
    "email": "text", "name": "text", "gender": "text", "income_band": "text", "occupation": "text",
    "country": "text", "region": "text", "city": "text", "language": "text", "timezone": "text",
    "company": "text", "industry": "text", "device_type": "text", "os": "text", "plan": "text",
    "birth_date": "date", "signed_up_at": "timestamptz", "last_seen_at": "timestamptz",
    "company_size": "integer", "annual_revenue": "numeric", "email_opt_in": "boolean", "tech_stack": "varchar[]",
}
assert set(_COLUMNS) == set(BUILTIN_TRAITS), "every built-in trait is a column of the staging table"
_STAGE = ("customer_id", "external_id", "kind", "value", *_COLUMNS, "custom")
_COLUMN_INDEX = {column: i for i, column in enumerate(_COLUMNS)}
_STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS import_customer_stage (customer_id bigint, external_id text, kind text, "
    "value text, " + ", ".join(f"{col} {type_}" for col, type_ in _COLUMNS.items())
    + ", custom jsonb) ON COMMIT DELETE ROWS")


_CREATE = f"""
WITH created AS (
    INSERT INTO customers_customer (external_id, anonymous_ids, {", ".join(_COLUMNS)}, traits, created_at, updated_at)
    SELECT s.external_id, '{{}}', {", ".join(f"s.{c}" for c in _COLUMNS)}, s.custom,
           %(now)s, %(now)s
    FROM import_customer_stage s WHERE s.customer_id IS NULL ORDER BY s.external_id
    ON CONFLICT (external_id) DO NOTHING
    RETURNING id, external_id
), attached AS (
    INSERT INTO customers_customeridentity (customer_id, kind, value, created_at)
    SELECT created.id, s.kind, s.value, %(now)s
    FROM created JOIN import_customer_stage s ON s.external_id = created.external_id
    ORDER BY s.kind, s.value
    ON CONFLICT (kind, value) DO UPDATE SET customer_id = EXCLUDED.customer_id
)
SELECT external_id, id FROM created
"""

# TRICKY: custom traits are compared key by key, not with `traits @> custom`: containment
# calls ["a", "b"] a superset of ["a"], so a list trait that shrinks would look unchanged.
_DIFFERS = " OR ".join([f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM c.{c})" for c in _COLUMNS]
                       + ["EXISTS (SELECT 1 FROM jsonb_each(s.custom) AS e WHERE c.traits -> e.key IS DISTINCT FROM e.value)"])
_UPDATE = f"""
UPDATE customers_customer c SET {", ".join(f"{col} = COALESCE(s.{col}, c.{col})" for col in _COLUMNS)},
    traits = c.traits || s.custom, updated_at = %(now)s
FROM import_customer_stage s
WHERE c.id = s.customer_id AND ({_DIFFERS})
RETURNING c.id
"""


# Built-ins whose staged text differs from the normalised value.
_STAGED_AS = {
    "birth_date": lambda value: value[:10],  # normalised to UTC ISO 8601: its date, as ::timestamptz::date in UTC
    "company_size": int,  # a whole number (checked), maybe written 40.0
}


def _stage_row(customer: _Customer) -> tuple:
    kind, value = _pair(customer.external_id)
    builtin = customer.builtin
    cells = [builtin.get(column) for column in _COLUMNS]
    for column, stage in _STAGED_AS.items():
        if builtin.get(column) is not None:
            cells[_COLUMN_INDEX[column]] = stage(builtin[column])
    return (customer.customer_id, customer.external_id, kind, value, *cells, orjson.dumps(customer.custom).decode())


def _write(customers: dict[Any, _Customer], now: datetime) -> dict[str, int]:
    """Stage the merged rows and create the new customers; {external id: id} created.
    Customers another writer created meanwhile are locked and staged as known ones."""
    with cursor() as cur:
        cur.execute(_STAGING_DDL)  # a no-op but for the connection's first chunk
        # A savepoint retry (services._write_rows_isolating) reuses the transaction: start empty.
        cur.execute("DELETE FROM import_customer_stage")
        with cur.copy(f"COPY import_customer_stage ({', '.join(_STAGE)}) FROM STDIN") as copy:
            for customer in customers.values():
                copy.write_row(_stage_row(customer))
        if any(c.customer_id is None for c in customers.values()):
            cur.execute(_CREATE, {"now": now})
            created = dict(cur.fetchall())
        else:
            created = {}
        taken = [c for c in customers.values() if c.customer_id is None and c.external_id not in created]
        if taken:
            _adopt(cur, taken, now)
    return created


def _adopt(cur, taken: list[_Customer], now: datetime) -> None:
    """Customers the insert found already there (created by another writer since the
    lookup): lock them, attach their identity, and stage them for the update."""
    cur.execute("SELECT external_id, id FROM customers_customer WHERE external_id = ANY(%s) ORDER BY id "
                "FOR NO KEY UPDATE",
                [[c.external_id for c in taken]])
    ids = dict(cur.fetchall())
    for customer in taken:
        customer.customer_id = ids[customer.external_id]
    cur.execute("UPDATE import_customer_stage s SET customer_id = v.id::bigint FROM "
                "(SELECT * FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json))) "
                "AS v(external_id, id) WHERE s.external_id = v.external_id",
                [json_list(ids), json_list(str(i) for i in ids.values())])
    cur.execute("INSERT INTO customers_customeridentity (customer_id, kind, value, created_at) "
                "SELECT customer_id, kind, value, %s FROM import_customer_stage WHERE external_id = ANY(%s) "
                "ORDER BY kind, value ON CONFLICT (kind, value) DO NOTHING", [now, [c.external_id for c in taken]])


def _update(now: datetime) -> set[int]:
    """Apply the staged values to the known customers where they differ; the ids changed."""
    with cursor() as cur:
        cur.execute(_UPDATE, {"now": now})
        return {customer_id for (customer_id,) in cur.fetchall()}
