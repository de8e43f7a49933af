"""A definition before it is saved: its statement, how many it matches, a sample, and
how many would enter and exit. Writes nothing."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.db import transaction

from common.replica import replica_reads
from common.actors import Actor
from common.errors import Problem
from customers.models import Customer
from segments.models import (
    Segment,
)
from segments.rules.compile import Sql, compile_rule
from segments.rules.nodes import Group
from segments.selectors.personal import ensure_rule_readable
from segments.selectors.rules import rule_context

SAMPLE_SIZE = 20


@dataclass(frozen=True)
class Warning:
    """A warning beside a successful save: the parser's (`unknown_event`) or hygiene's."""

    path: str
    code: str
    message: str
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"path": self.path, "code": self.code, "message": self.message, "details": self.details}


def as_warnings(problems: list[Problem]) -> list[Warning]:
    return [Warning(p.path, p.code, p.message) for p in problems]


def compile_definition(definition: Any, *, now: datetime, self_key: str | None) -> tuple[Sql, Group, list[Warning]]:
    """The statement of a (not necessarily saved) definition at `now`, with the parser's
    warnings; invalid definitions raise DomainError with paths under `definition.`."""
    rule = rule_context(definition=definition, self_key=self_key)
    sql = compile_rule(rule.group, now=now, refs=rule.reference_ids(), rollups=rule.rollups(now))
    return sql, rule.group, as_warnings(rule.warnings)


@dataclass(frozen=True)
class Estimate:
    """The count scaled up from a fixed hash-sample of the customers, with the half-width of
    its 95% interval (`margin`). `sampled` of `population` customers were read."""

    count: int
    margin: int
    matched: int
    sampled: int
    population: int

    @property
    def exact(self) -> bool:
        return self.sampled >= self.population


@dataclass(frozen=True)
class Preview:
    """`count` is exact when `exact` is, else the estimate's. `estimate` is None when only
    the exact count was asked for."""

    count: int
    sample_ids: list[int]
    would_enter: int
    would_exit: int
    current_size: int
    warnings: list[Warning]
    exact: bool = True
    estimate: Estimate | None = None


Accuracy = Literal["estimate", "exact", "both"]


# Two ways to a count and a sample, chosen by a probe: the rule compiled for SAMPLE_PROBES
# ids spread evenly over the customer id range (the scoping an incremental check uses, so
# it costs what the probes cost, not what the rule costs).
# - Dense rules (the probe finds a whole sample): the sample is the matching probes with
#   the smallest sample keys (below), and the count is the compiled statement counted,
#   nothing more (joined to the segment's open memberships when there is one).
# - Sparse rules: one pass over the compiled statement grouped into SAMPLE_BUCKETS buckets
#   by a hash of the id (hashint8): per bucket the matches, how many are members now, and the match
#   with the smallest sample key (the hash's high bits, then the id, packed into one bigint:
#   ids below 2^39); the sample is the SAMPLE_SIZE smallest keys among the minima.
# Either way the sample is spread over the id range and the same between calls while the
# matches are.
# TRICKY: the buckets come from a join with generate_series, not GROUP BY the expression: the
# planner has no statistics for `hashint8(id) & 255`, guessed one group per row and chose a
# single-process hash aggregate; with the series it knows there are 256 groups and runs the
# pass with parallel workers. That join and aggregate still cost per matched row, up to twice
# the bare count for rules matching hundreds of thousands — hence the dense path (probes,
# then the count alone); sparse rules have few rows to group, and the pass costs about the
# count (bench/segments.py preview_*).
SAMPLE_PROBES = 256
SAMPLE_BUCKETS = 256
_KEY_SHIFT = 39
_COUNT_SQL = "SELECT count(*), {staying} FROM ({matched}) m {current}"
_PREVIEW_SQL = """
SELECT b.n, count(*), {staying}, min(((hashint8(m.id) >> 8)::bigint << {shift}) + m.id)
FROM ({matched}) m
JOIN generate_series(0, {buckets}) AS b(n) ON b.n = hashint8(m.id) & {buckets}
{current}
GROUP BY b.n
"""
_CURRENT_JOIN = ("LEFT JOIN segments_membership o ON o.segment_id = %(q_segment)s AND o.exited_at IS NULL "
                 "AND o.customer_id = m.id")
_SAMPLE_SQL = """
SELECT m.id FROM ({matched}) m ORDER BY ((hashint8(m.id) >> 8)::bigint << {shift}) + m.id LIMIT %(q_sample)s
"""


def preview(*, actor: Actor, definition: Any, now: datetime, segment: Segment | None = None,
            sample_size: int = SAMPLE_SIZE, accuracy: Accuracy = "exact") -> Preview:
    """How many customers `definition` matches at `now`, a sample of them (≤ 20, spread
    over the id range, stable between calls) and — against `segment`'s open memberships —
    how many would enter and exit if it were saved. Writes nothing. A rule over personal
    data is refused to an actor who may not read it (its counts would spell it out).

    `accuracy`: "estimate" reads only the hash-sample (see `_estimate`) and scales its
    numbers up; "exact" evaluates the rule over everyone; "both" does both."""
    ensure_rule_readable(actor, definition)
    rule = rule_context(definition=definition, self_key=segment.key if segment else None)
    warnings = as_warnings(rule.warnings)
    refs, rollups = rule.reference_ids(), rule.rollups(now)

    def statement(*, only: list[int] | None = None, only_sql: str | None = None) -> Sql:
        return compile_rule(rule.group, now=now, refs=refs, rollups=rollups, only=only, only_sql=only_sql)

    size = min(sample_size, SAMPLE_SIZE)
    with replica_reads() as db, transaction.atomic(using=db.alias), db.cursor() as cursor:
        # The estimate's sample ids AND-ed with another condition's index make a bitmap that
        # the default 4 MB turns lossy at a million customers: every row of its pages is then
        # rechecked against the ids (bench/segments.py estimate_nested_any_not).
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.PREVIEW_WORK_MEM])
        current = _open_count(cursor, segment) if segment else 0
        estimate = staying_sampled = sampled_ids = None
        if accuracy != "exact":
            estimate, staying_sampled, sampled_ids = _estimate(cursor, statement, segment=segment, size=size)
            if estimate.exact or accuracy == "estimate":
                staying = staying_sampled if estimate.exact else _scaled(staying_sampled, estimate)
                return Preview(count=estimate.count, sample_ids=sampled_ids, would_enter=max(estimate.count - staying, 0),
                               would_exit=max(current - staying, 0), current_size=current, warnings=warnings,
                               exact=estimate.exact, estimate=estimate)
        count, staying, sample = _exact(cursor, statement, segment=segment, size=size)
    return Preview(count=count, sample_ids=sample, would_enter=count - staying, would_exit=current - staying,
                   current_size=current, warnings=warnings, exact=True, estimate=estimate)


Statement = Callable[..., Sql]  # the rule compiled, over everyone or (only=…, only_sql=…) some customers


def _exact(cursor, statement: Statement, *, segment: Segment | None, size: int) -> tuple[int, int, list[int]]:
    """(matches, of them open members of `segment`, sample ids) over every customer."""
    sql = statement()
    params = {**sql.params, "q_segment": segment.pk if segment else None, "q_sample": size}
    current_sql = _CURRENT_JOIN if segment else ""
    staying_sql = "count(o.customer_id)" if segment else "0"
    probed = _probe(cursor, statement, size=size)
    if len(probed) >= size:
        cursor.execute(_COUNT_SQL.format(matched=sql.text, current=current_sql, staying=staying_sql), params)
        count, staying = cursor.fetchone()
        return count, staying, probed
    cursor.execute(_PREVIEW_SQL.format(matched=sql.text, buckets=SAMPLE_BUCKETS - 1, shift=_KEY_SHIFT,
                                       current=current_sql, staying=staying_sql), params)
    buckets = cursor.fetchall()
    count, staying = sum(row[1] for row in buckets), sum(row[2] for row in buckets)
    sample = [key & ((1 << _KEY_SHIFT) - 1) for key in sorted(row[3] for row in buckets)[:size]]
    if len(sample) < min(size, count):
        # Fewer non-empty buckets than the sample asks for (a few dozen matches): the
        # statement again, sorted by the same key. Cheap where it runs: few matches.
        cursor.execute(_SAMPLE_SQL.format(matched=sql.text, shift=_KEY_SHIFT), params)
        sample = [row[0] for row in cursor.fetchall()]
    return count, staying, sample


# The estimate's sample: the customers whose id hashes (hashint8, the bits under
# ESTIMATE_BUCKETS) into the lowest buckets, as many buckets as give ~ESTIMATE_TARGET
# customers (at least ESTIMATE_MIN_BUCKETS: ~1%). The same customers every call, so an
# estimate moves only when the rule or the data does; read through the expression index
# customer_sample_idx. A tenant with fewer than ESTIMATE_TARGET customers is sampled whole
# and its estimate is the exact count.
ESTIMATE_BUCKETS = 1024
ESTIMATE_TARGET = 10_000
ESTIMATE_MIN_BUCKETS = 11
_Z95 = 1.959964
_POPULATION_SQL = "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'customers_customer'::regclass"
_SAMPLE_IDS_SQL = "SELECT id FROM customers_customer WHERE (hashint8(id) & {mask}) < {buckets}"
# The sample's matches in sample-key order, each with whether it is an open member.
_SAMPLED_SQL = """
SELECT m.id, {member} FROM ({matched}) m {current}
ORDER BY ((hashint8(m.id) >> 8)::bigint << {shift}) + m.id
"""


def sample_buckets(population: int, target: int | None = None) -> int:
    """How many of the ESTIMATE_BUCKETS hash buckets the estimate reads in a tenant of about
    `population` customers."""
    wanted = math.ceil(ESTIMATE_BUCKETS * (target or ESTIMATE_TARGET) / max(population, 1))
    return min(ESTIMATE_BUCKETS, max(ESTIMATE_MIN_BUCKETS, wanted))


def _estimate(cursor, statement: Statement, *, segment: Segment | None, size: int) -> tuple[Estimate, int, list[int]]:
    """The estimate, how many of the sample's matches are open members of `segment`, and the
    sample's `size` matches with the smallest sample keys."""
    cursor.execute(_POPULATION_SQL)
    buckets = sample_buckets(cursor.fetchone()[0], ESTIMATE_TARGET)
    if buckets >= ESTIMATE_BUCKETS:
        # Everyone is in the sample: the exact statement, without the array of every id.
        count, staying, sample = _exact(cursor, statement, segment=segment, size=size)
        cursor.execute("SELECT count(*) FROM customers_customer")
        population = cursor.fetchone()[0]
        return estimate_of(matched=count, sampled=population, population=population), staying, sample
    # The ids as a parameter, not a subquery: the planner then knows there are ~10k of them
    # and plans the incremental evaluation's way (a subquery's array is guessed at 10 ids,
    # and a correlated NOT EXISTS re-read the whole array per customer: minutes at 1M).
    cursor.execute(_SAMPLE_IDS_SQL.format(mask=ESTIMATE_BUCKETS - 1, buckets=buckets))
    ids = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT count(*) FROM customers_customer")
    population = cursor.fetchone()[0]
    scoped = statement(only=ids)
    member = "o.customer_id IS NOT NULL" if segment else "false"
    params = {**scoped.params, "q_segment": segment.pk if segment else None}
    cursor.execute(_SAMPLED_SQL.format(matched=scoped.text, member=member, current=_CURRENT_JOIN if segment else "",
                                       shift=_KEY_SHIFT), params)
    rows = cursor.fetchall()
    staying = sum(1 for _, is_member in rows if is_member)
    estimate = estimate_of(matched=len(rows), sampled=len(ids), population=max(population, len(ids)))
    return estimate, staying, [row[0] for row in rows[:size]]


def estimate_of(*, matched: int, sampled: int, population: int) -> Estimate:
    """`matched` of `sampled` customers drawn without replacement from `population`, scaled
    up, with the Wilson score interval's half-width at 95% (finite-population corrected) as
    the margin: it stays above zero when nobody or everybody in the sample matches."""
    if sampled <= 0 or sampled >= population:
        return Estimate(count=matched, margin=0, matched=matched, sampled=sampled, population=max(population, sampled))
    share = matched / sampled
    z2n = _Z95 ** 2 / sampled
    half = _Z95 * math.sqrt(share * (1 - share) / sampled + z2n / (4 * sampled)) / (1 + z2n)
    correction = math.sqrt((population - sampled) / (population - 1))
    return Estimate(count=round(share * population), margin=math.ceil(half * correction * population),
                    matched=matched, sampled=sampled, population=population)


def _scaled(sampled_count: int, estimate: Estimate) -> int:
    return round(sampled_count * estimate.population / estimate.sampled) if estimate.sampled else 0


# The probe ids, computed beside the ids (asking for min and max first was a round trip of
# its own). NULL in an empty tenant: nothing matches.
_PROBE_IDS_SQL = ("SELECT array_agg(r.low + (i * r.span) / least(r.span, {probes}) ORDER BY i) "
                  "FROM (SELECT min(id) AS low, max(id) - min(id) + 1 AS span FROM customers_customer) r, "
                  "generate_series(0, least(r.span, {probes}) - 1) i")


def _probe(cursor, statement: Statement, *, size: int) -> list[int]:
    """The `size` matches with the smallest sample keys among SAMPLE_PROBES ids spread evenly
    over the customer id range (fewer when fewer match)."""
    if SAMPLE_PROBES < 1:
        return []
    scoped = statement(only_sql=_PROBE_IDS_SQL.format(probes=SAMPLE_PROBES))
    cursor.execute(_SAMPLE_SQL.format(matched=scoped.text, shift=_KEY_SHIFT), {**scoped.params, "q_sample": size})
    return [row[0] for row in cursor.fetchall()]


def _open_count(cursor, segment: Segment) -> int:
    cursor.execute("SELECT count(*) FROM segments_membership WHERE segment_id = %s AND exited_at IS NULL",
                   [segment.pk])
    return cursor.fetchone()[0]


def customers_in_order(ids: list[int]) -> list[Customer]:
    """The customers of `ids` in that order (one query)."""
    found = Customer.objects.in_bulk(ids)
    return [found[i] for i in ids if i in found]
