"""The exported tables: each an Arrow schema and one query that streams its rows in the
schema's column order. Customers carry one typed column per trait of the registry (personal
ones only when the export includes them); JSON (event properties, rule definitions) is
exported as JSON text, which every warehouse parses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from customers.models import TraitDefinition
from customers.selectors import personal_property_keys
from segments.rules.vocabulary import BUILTIN_TRAITS

CUSTOMERS, EVENTS, MEMBERSHIPS, SEGMENTS = "customers", "events", "memberships", "segments"
TABLES = (CUSTOMERS, EVENTS, MEMBERSHIPS, SEGMENTS)
TABLE_LABELS = {
    CUSTOMERS: "Customers and their traits",
    EVENTS: "Events (new since the last export)",
    MEMBERSHIPS: "Segment memberships with history",
    SEGMENTS: "Segment definitions",
}

UTC_TIME = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {"string": pa.string(), "number": pa.float64(), "boolean": pa.bool_(), "datetime": UTC_TIME,
               "list": pa.list_(pa.string())}


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    sql: str
    params: list
    # Events are partitioned by the UTC day they happened (the column named here); the
    # snapshots by the day of the export.
    date_column: str | None = None
    # Columns read as ISO text and parsed here: a custom datetime trait is JSON text, and a
    # malformed one must become null, not fail the statement.
    parse_times: tuple[str, ...] = ()
    # JSON text columns whose values under these (lower-case) keys are personal and read
    # "hidden", at any depth — as the events API shows them to a role without customers.view_pii.
    masked_json: tuple[str, ...] = ()
    hidden_keys: frozenset[str] = frozenset()


def _builtin_sql(key: str, type_: str) -> str:
    if type_ == "number":
        return f"c.{key}::float8"
    if type_ == "datetime":
        return f"c.{key}::timestamptz"
    return f"c.{key}"


def _custom_sql(type_: str) -> str:
    """A custom trait from the JSON document (its key is the statement's next parameter),
    null unless the stored JSON has the trait's type."""
    value = "c.traits->%s"
    if type_ == "number":
        return f"CASE WHEN jsonb_typeof({value}) = 'number' THEN (c.traits->>%s)::float8 END"
    if type_ == "boolean":
        return f"CASE WHEN jsonb_typeof({value}) = 'boolean' THEN (c.traits->>%s)::boolean END"
    if type_ == "list":
        return f"CASE WHEN jsonb_typeof({value}) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(c.traits->%s)) END"
    return f"CASE WHEN jsonb_typeof({value}) IN ('string', 'number', 'boolean') THEN c.traits->>%s END"


def customers(*, include_personal: bool) -> Table:
    fields = [pa.field("customer_id", pa.int64(), nullable=False), pa.field("external_id", pa.string(), nullable=False),
              pa.field("anonymous_ids", pa.list_(pa.string()))]
    columns = ["c.id", "c.external_id", "c.anonymous_ids"]
    params: list = []
    parse_times = []
    registry = TraitDefinition.objects.order_by("key").values_list("key", "type", "is_pii")
    for key, type_, personal in registry:
        if personal and not include_personal:
            continue
        if key in BUILTIN_TRAITS:
            columns.append(_builtin_sql(key, type_))
        else:
            columns.append(_custom_sql(type_))
            params += [key, key]
            if type_ == "datetime":
                parse_times.append(key)
        fields.append(pa.field(key, ARROW_TYPES[type_]))
    fields += [pa.field("created_at", UTC_TIME, nullable=False), pa.field("updated_at", UTC_TIME, nullable=False)]
    columns += ["c.created_at", "c.updated_at"]
    sql = f"SELECT {', '.join(columns)} FROM customers_customer c ORDER BY c.id"
    return Table(CUSTOMERS, pa.schema(fields), sql, params, parse_times=tuple(parse_times))


def events(*, after: datetime | None, until: datetime, include_personal: bool) -> Table:
    schema = pa.schema([
        pa.field("event_id", pa.int64(), nullable=False), pa.field("message_id", pa.string()),
        pa.field("customer_id", pa.int64(), nullable=False), pa.field("external_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False), pa.field("timestamp", UTC_TIME, nullable=False),
        pa.field("received_at", UTC_TIME, nullable=False), pa.field("source", pa.string(), nullable=False),
        pa.field("properties", pa.string(), nullable=False),
    ])
    # In the order of their day, so one file is open at a time however long the history.
    sql = ("SELECT e.id, e.message_id, e.customer_id, c.external_id, e.name, e.timestamp, e.received_at, e.source, "
           "e.properties::text FROM customers_event e JOIN customers_customer c ON c.id = e.customer_id "
           "WHERE e.received_at <= %s AND (%s::timestamptz IS NULL OR e.received_at > %s) "
           "ORDER BY e.timestamp, e.id")
    hidden = frozenset() if include_personal else personal_property_keys()
    return Table(EVENTS, schema, sql, [until, after, after], date_column="timestamp",
                 masked_json=("properties",) if hidden else (), hidden_keys=hidden)


def memberships() -> Table:
    schema = pa.schema([
        pa.field("membership_id", pa.int64(), nullable=False), pa.field("segment_key", pa.string(), nullable=False),
        pa.field("customer_id", pa.int64(), nullable=False), pa.field("external_id", pa.string()),
        pa.field("entered_at", UTC_TIME, nullable=False), pa.field("exited_at", UTC_TIME),
        pa.field("definition_version", pa.int64(), nullable=False), pa.field("source", pa.string(), nullable=False),
    ])
    # external_id is null for a membership row kept after its customer was erased.
    sql = ("SELECT m.id, s.key, m.customer_id, c.external_id, m.entered_at, m.exited_at, m.definition_version, "
           "m.source FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id "
           "LEFT JOIN customers_customer c ON c.id = m.customer_id ORDER BY m.id")
    return Table(MEMBERSHIPS, schema, sql, [])


def segments() -> Table:
    schema = pa.schema([
        pa.field("segment_id", pa.int64(), nullable=False), pa.field("key", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False), pa.field("description", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
        pa.field("definition", pa.string()), pa.field("definition_version", pa.int64(), nullable=False),
        pa.field("size", pa.int64(), nullable=False), pa.field("tags", pa.list_(pa.string())),
        pa.field("created_at", UTC_TIME, nullable=False), pa.field("updated_at", UTC_TIME, nullable=False),
    ])
    sql = ("SELECT id, key, name, description, kind, status, definition::text, definition_version, size, tags, "
           "created_at, updated_at FROM segments_segment ORDER BY id")
    return Table(SEGMENTS, schema, sql, [])


def table_for(name: str, *, include_personal: bool, events_after: datetime | None, events_until: datetime) -> Table:
    if name == CUSTOMERS:
        return customers(include_personal=include_personal)
    if name == EVENTS:
        return events(after=events_after, until=events_until, include_personal=include_personal)
    if name == MEMBERSHIPS:
        return memberships()
    return segments()
