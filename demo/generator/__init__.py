"""Synthetic SaaS customers, events, survey answers and consent, with planted truth.

For the demo tenant, tests and benchmarks. Every customer belongs to one of the personas
in demo/personas.py, which shape its traits and its behaviour; a share of
each persona churns (activity decays exponentially, then stops a month or more before
`now`, paying churners usually with `subscription_cancelled`). What was planted — persona,
churned, churned_at — is written to GeneratorTruth, never to the customer, so segmentation
and clustering cannot read the answer but their tests can.

Deterministic for (seed, now). Runs append: external ids continue after the last one.

Speed: numpy draws everything for a chunk of customers at once; rows are formatted as
COPY text in Python joins (no per-row adaptation) and streamed by a background writer
thread while the next block is formatted, so the Python side overlaps PostgreSQL's index
maintenance. Memory is bounded by the chunk size, not by N or M.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection
from psycopg.copy import QueuedLibpqWriter

from customers import partitions
from customers.ingest.store import EVENT_REGISTRY_MERGE
from customers.models import Survey, TraitDefinition
from demo import personas as P
from demo.generator.chunks import CUSTOMER_CHUNK, allocate, chunk_rows, skeleton
from demo.generator.tables import (
    CONSENT_CHANGE_COLUMNS, CONSENT_COLUMNS, CUSTOMER_COLUMNS, EVENT_COLUMNS, SURVEY_COLUMNS, TRUTH_COLUMNS, ts_text,
)
from segments.rules.vocabulary import infer_type

WRITE_LINES = 50_000  # COPY lines per write() call


@dataclass(frozen=True)
class GenerateResult:
    customers: int
    events: int
    survey_responses: int
    consents: int
    consent_changes: int
    seconds: float
    personas: dict[str, int]
    churned: int


Progress = Callable[[str, int], None]


def _copy(cursor, table: str, columns: tuple[str, ...], lines: list[str], tick: Callable[[int], None] | None = None):
    """One COPY of pre-formatted text lines, written in blocks by a background thread."""
    if not lines:
        return
    raw = cursor.cursor  # TRICKY: the psycopg cursor under Django's wrapper (search_path already set)
    with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN", writer=QueuedLibpqWriter(raw)) as copy:
        for start in range(0, len(lines), WRITE_LINES):
            block = lines[start:start + WRITE_LINES]
            copy.write("\n".join(block) + "\n")
            if tick:
                tick(len(block))


def register_traits(*, now: datetime) -> None:
    """The generator's custom traits in the tenant's registry, with their categories
    (an existing definition is left as the tenant edited it)."""
    for key, type_, category, description in P.CUSTOM_TRAITS:
        TraitDefinition.objects.get_or_create(key=key, defaults={
            "type": type_, "category": category, "description": description, "first_seen_at": now})


def generate(*, customers: int, events: int, now: datetime, seed: int = 42,
             prefix: str = "gen-", progress: Progress | None = None) -> GenerateResult:
    """Append `customers` customers and exactly `events` events to the current tenant.

    Each customer's first event is one `user_signed_up` at its sign-up (counted in
    `events`; with fewer events than customers only the first `events` customers get one).
    """
    started = time.perf_counter()
    tick = progress or (lambda stage, n: None)
    now_s = math.floor(now.timestamp())
    stamp = ts_text(np.array([now_s]))[0]
    offset = _next_index(prefix)
    register_traits(now=now)
    # Every month of the run's history gets its partition first: COPY then writes each row
    # once, into its month (not into the default partition for the upkeep to move).
    partitions.ensure_months(partitions.months_between(now - timedelta(days=P.HISTORY_DAYS + 1),
                                                       partitions.add_months(partitions.month_of(now), 1)))
    survey_ids = {key: Survey.objects.get_or_create(key=key, defaults={"kind": key, "name": name})[0].id
                  for key, name in [("nps", "Net Promoter Score"), ("csat", "Customer satisfaction")]}

    chunks = [(c, min(CUSTOMER_CHUNK, customers - c * CUSTOMER_CHUNK))
              for c in range(math.ceil(customers / CUSTOMER_CHUNK))]
    signups = min(customers, events)
    # First pass: split the event budget over the chunks by their customers' weights, so
    # the total is exact without holding every customer in memory.
    if not chunks:
        return GenerateResult(customers=0, events=0, survey_responses=0, consents=0, consent_changes=0,
                              seconds=time.perf_counter() - started, personas={}, churned=0)
    skeletons = (skeleton(seed, c, n, now_s) for c, n in chunks)
    sums = np.array([(sk["fixed"].sum(), sk["expected"].sum()) for sk in skeletons])
    budgets = allocate(np.random.default_rng([seed, 0]), events - signups, sums[:, 0].astype(np.int64), sums[:, 1])
    counts = {"events": 0, "surveys": 0, "consents": 0, "changes": 0, "churned": 0}
    personas = np.zeros(len(P.PERSONAS), dtype=np.int64)
    context = {"seed": seed, "now_s": now_s, "stamp": stamp, "prefix": prefix, "offset": offset,
               "signups": signups, "survey_ids": survey_ids}

    def reserve(cursor, n: int) -> np.ndarray:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('customers_customer', 'id')) "
                       "FROM generate_series(1, %s)", [n])
        return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)

    # TRICKY: chunk c + 1 is drawn and formatted in a worker thread while chunk c is being
    # COPYed (PostgreSQL's index upkeep is the slow side; COPY waits release the GIL). Only
    # the main thread touches the connection; ids are reserved before a chunk is handed over.
    with connection.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(chunk_rows, context, *chunks[0], budgets[0], reserve(cursor, chunks[0][1]))
        for i in range(len(chunks)):
            chunk = pending.result()
            if i + 1 < len(chunks):
                c, n = chunks[i + 1]
                pending = pool.submit(chunk_rows, context, c, n, budgets[i + 1], reserve(cursor, n))
            _copy(cursor, "customers_customer", CUSTOMER_COLUMNS, chunk.customers)
            # Generated customers are known to sources by their external id, like any other.
            cursor.execute(
                "INSERT INTO customers_customeridentity (customer_id, kind, value, created_at) "
                "SELECT id, 'user_id', external_id, now() FROM customers_customer "
                "WHERE external_id >= %s AND external_id < %s ON CONFLICT DO NOTHING", chunk.external_range)
            _copy(cursor, "customers_generatortruth", TRUTH_COLUMNS, chunk.truth)
            tick("customers", len(chunk.customers))
            _copy(cursor, "customers_event", EVENT_COLUMNS, chunk.events, tick=lambda k: tick("events", k))
            _copy(cursor, "customers_surveyresponse", SURVEY_COLUMNS, chunk.surveys)
            _copy(cursor, "customers_consent", CONSENT_COLUMNS, chunk.consents)
            _copy(cursor, "customers_consentchange", CONSENT_CHANGE_COLUMNS, chunk.changes)
            counts["events"] += len(chunk.events)
            counts["surveys"] += len(chunk.surveys)
            counts["consents"] += len(chunk.consents)
            counts["changes"] += len(chunk.changes)
            counts["churned"] += chunk.churned
            personas += chunk.personas
            del chunk
        # This run's customers: external ids offset … offset + customers - 1 (see _chunk).
        _register_events(cursor, [f"{prefix}{offset:08d}", f"{prefix}{offset + customers:08d}"], now)
        # A bulk load leaves the planner's statistics behind (autovacuum sees the rows only
        # after commit, and never inside a test's transaction): with tables it believes
        # empty, the feature queries chose nested loops and took 28 s for 200 customers.
        cursor.execute("ANALYZE customers_customer, customers_event, customers_surveyresponse, customers_consent, "
                       "customers_generatortruth")
    return GenerateResult(
        customers=customers, events=counts["events"], survey_responses=counts["surveys"],
        consents=counts["consents"], consent_changes=counts["changes"], seconds=time.perf_counter() - started,
        personas=dict(zip(P.PERSONA_KEYS, personas.tolist())), churned=counts["churned"],
    )


# The builder's autocomplete and the parser's unknown-event warnings read the event
# registry, which ingestion keeps up to date batch by batch; generated events arrive by
# COPY, so the run registers its own, set-wise: one aggregate over the run's events (its
# customers' external id range) merged as ingestion merges (volumes add, first/last seen
# widen), property types from a few events of each name (the generator's property shapes
# are few and fixed per name).
_RUN_EVENTS = """
SELECT e.name, min(e.timestamp), max(e.timestamp), count(*)
FROM customers_event e JOIN customers_customer c ON c.id = e.customer_id
WHERE c.external_id >= %s AND c.external_id < %s
GROUP BY e.name ORDER BY e.name
"""
_REGISTER_EVENT = """
INSERT INTO customers_eventdefinition (name, first_seen_at, last_seen_at, volume, properties, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)
""" + EVENT_REGISTRY_MERGE
_TYPE_SAMPLE = 50  # events per name whose properties give the registered types


def _register_events(cursor, external_range: list[str], now: datetime) -> None:
    cursor.execute(_RUN_EVENTS, external_range)
    rows = []
    for name, first, last, volume in cursor.fetchall():
        cursor.execute("SELECT properties FROM customers_event WHERE name = %s LIMIT %s", [name, _TYPE_SAMPLE])
        types: dict[str, str] = {}
        for (properties,) in cursor.fetchall():
            if isinstance(properties, str):  # Django's cursors read jsonb as text
                properties = json.loads(properties)
            for key, value in (properties or {}).items():
                inferred = infer_type(value)
                if key not in types and inferred is not None:
                    types[key] = inferred.value
        rows.append((name, first, last, volume, json.dumps(types), now, now))
    cursor.executemany(_REGISTER_EVENT, rows)


def _next_index(prefix: str) -> int:
    """Generated external ids continue after the last generated one, so reruns append."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(external_id) FROM customers_customer WHERE external_id LIKE %s", [prefix + "%"]
        )
        (last,) = cursor.fetchone()
    return int(last.removeprefix(prefix)) + 1 if last else 0
