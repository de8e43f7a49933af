"""A definition before it is saved: its statement, how many it matches, a sample, and
how many would enter and exit. Writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

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
    return compile_rule(rule.group, now=now, refs=rule.reference_ids()), rule.group, as_warnings(rule.warnings)


@dataclass(frozen=True)
class Preview:
    count: int
    sample_ids: list[int]
    would_enter: int
    would_exit: int
    current_size: int
    warnings: list[Warning]


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
            sample_size: int = SAMPLE_SIZE) -> Preview:
    """How many customers `definition` matches at `now`, a sample of them (≤ 20, spread
    over the id range, stable between calls) and — against `segment`'s open memberships —
    how many would enter and exit if it were saved. Writes nothing. A rule over personal
    data is refused to an actor who may not read it (its counts would spell it out)."""
    ensure_rule_readable(actor, definition)
    rule = rule_context(definition=definition, self_key=segment.key if segment else None)
    group, refs, warnings = rule.group, rule.reference_ids(), as_warnings(rule.warnings)
    sql = compile_rule(group, now=now, refs=refs)
    size = min(sample_size, SAMPLE_SIZE)
    params = {**sql.params, "q_segment": segment.pk if segment else None, "q_sample": size}
    current_sql = _CURRENT_JOIN if segment else ""
    staying_sql = "count(o.customer_id)" if segment else "0"
    with connection.cursor() as cursor:
        probed = _probe(cursor, group, refs, now=now, size=size)
        if len(probed) >= size:
            cursor.execute(_COUNT_SQL.format(matched=sql.text, current=current_sql, staying=staying_sql), params)
            count, staying = cursor.fetchone()
            sample = probed
        else:
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
        current = _open_count(cursor, segment) if segment else 0
    return Preview(count=count, sample_ids=sample, would_enter=count - staying, would_exit=current - staying,
                   current_size=current, warnings=warnings)


# The probe ids, computed beside the ids (asking for min and max first was a round trip of
# its own). NULL in an empty tenant: nothing matches.
_PROBE_IDS_SQL = ("SELECT array_agg(r.low + (i * r.span) / least(r.span, {probes}) ORDER BY i) "
                  "FROM (SELECT min(id) AS low, max(id) - min(id) + 1 AS span FROM customers_customer) r, "
                  "generate_series(0, least(r.span, {probes}) - 1) i")


def _probe(cursor, group: Group, refs: dict[str, int], *, now: datetime, size: int) -> list[int]:
    """The `size` matches with the smallest sample keys among SAMPLE_PROBES ids spread evenly
    over the customer id range (fewer when fewer match)."""
    if SAMPLE_PROBES < 1:
        return []
    scoped = compile_rule(group, now=now, refs=refs, only_sql=_PROBE_IDS_SQL.format(probes=SAMPLE_PROBES))
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
