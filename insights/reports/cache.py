"""The reports' cache: an entry per tenant (the cache's key function carries the schema),
per report and query, for the minute of its `now`, under a fingerprint of the data the
reports read — the newest event, membership change, survey answer, customer, metrics
refresh, settings and segment — so a change of any of those is a miss."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.core.cache import cache

from common.replica import replica_reads

CACHE_SECONDS = 3600
T = TypeVar("T")


def cached_report(kind: str, *, now: datetime, query: tuple[str, ...], compute: Callable[[], T]) -> T:
    """The report `compute` makes, or the one made earlier in the same minute when nothing
    it reads has changed since (only its windows' edges moved, by less than a minute)."""
    minute = now.replace(second=0, microsecond=0).isoformat()
    parts = [fingerprint(), minute, *query]
    key = f"insights:{kind}:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    report = cache.get(key)
    if report is None:
        report = compute()
        cache.set(key, report, CACHE_SECONDS)
    return report


def fingerprint() -> str:
    """The newest row of everything the reports read (index lookups, well under 1 ms at 1M
    customers). What none of them shows — a deleted customer, a sign-up date edited by an
    import — shows when the entry expires (CACHE_SECONDS). The database's oid leads: ids
    start again in a recreated database (a restore, a test run), and an entry made
    before must not answer for the new rows that reuse them."""
    # Read where the reports read (a replica may be behind the primary): the entry is keyed
    # by the data its report saw.
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
            "(SELECT max(id) FROM customers_event), (SELECT max(id) FROM segments_membershipchange), "
            "(SELECT max(id) FROM customers_surveyresponse), (SELECT max(id) FROM customers_customer), "
            "(SELECT max(id) FROM customers_metricssummary), "
            "(SELECT max(updated_at) FROM customers_metricssettings), (SELECT max(updated_at) FROM segments_segment)")
        return ":".join(str(value) for value in cursor.fetchone())
