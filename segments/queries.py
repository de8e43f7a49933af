"""The questions people ask of segments, as selectors: preview before saving, members now
or at a past time, overlap, hygiene warnings, explain, version diffs.

Everything here reads; nothing writes memberships (the engine is their only writer).
Each question is answered by set-based SQL — one statement where the docstring says so —
never a loop over customers.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce, Upper

from common.errors import Problem
from customers.models import Customer
from customers.selectors import customers_by_external_ids
from segments.models import Membership, Segment, SegmentSettings
from segments.rules.compile import Sql, compile_rule
from segments.rules.nodes import Group
from segments.selectors import rule_context

SAMPLE_SIZE = 20
NEAR_DUPLICATE = 0.9  # member Jaccard at or above which two segments are near-duplicates
STALE_AFTER = timedelta(days=90)
MAX_OVERLAP = 10


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


# ------------------------------------------------------------------ compiling a draft


def compile_definition(definition: Any, *, now: datetime, self_key: str | None) -> tuple[Sql, Group, list[Warning]]:
    """The statement of a (not necessarily saved) definition at `now`, with the parser's
    warnings; invalid definitions raise DomainError with paths under `definition.`."""
    rule = rule_context(definition=definition, self_key=self_key)
    return compile_rule(rule.group, now=now, refs=rule.reference_ids()), rule.group, as_warnings(rule.warnings)


# ------------------------------------------------------------------ preview


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
# pass with parallel workers. But that join and aggregate cost ~1 µs per matched row: at
# 365k matches of a metric rule the pass took 2.0–2.2× the bare count, 1.4–1.5× for an
# anti-join matching 758k customers — hence the dense path, 1.1× on both; sparse rules have
# few rows to group, and there the pass is 1.0–1.1× (bench/segments.py preview_*, 2026-12-02).
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


def preview(*, definition: Any, now: datetime, segment: Segment | None = None,
            sample_size: int = SAMPLE_SIZE) -> Preview:
    """How many customers `definition` matches at `now`, a sample of them (≤ 20, spread
    over the id range, stable between calls) and — against `segment`'s open memberships —
    how many would enter and exit if it were saved. Writes nothing."""
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


# ------------------------------------------------------------------ members


def member_rows(*, segment: Segment, at: datetime | None = None) -> QuerySet[Membership]:
    """The stays that make `segment`'s members now (open rows) or at a past moment `at`
    (rows with entered_at ≤ at < exited_at), with their customers, by customer id (the
    keyset the API pages on). A customer has at most one stay covering any instant.

    Index: now → the partial unique index (segment_id, customer_id) WHERE exited_at IS
    NULL serves `segment_id = %s AND exited_at IS NULL AND customer_id > %s ORDER BY
    customer_id`; at → membership_entered_idx (segment_id, entered_at)."""
    rows = Membership.objects.filter(segment=segment)
    if at is None:
        rows = rows.filter(exited_at__isnull=True)
    else:
        rows = rows.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at), entered_at__lte=at)
    return rows.select_related("customer").order_by("customer_id")


def member_batches(*, segment: Segment, at: datetime | None = None, batch: int = 2000):
    """Every member row, in customer-id order, `batch` rows per query (keyset; for exports)."""
    after = 0
    while True:
        rows = list(member_rows(segment=segment, at=at).filter(customer_id__gt=after)[:batch])
        if not rows:
            return
        yield rows
        after = rows[-1].customer_id


def memberships_of(*, customer_id: int, now: datetime) -> set[str]:
    """Keys of the segments the customer is in at `now` (for segment conditions in explain)."""
    return set(Membership.objects.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=now), customer_id=customer_id,
                                         entered_at__lte=now).values_list("segment__key", flat=True))


# ------------------------------------------------------------------ overlap


_OVERLAP_SQL = """
WITH m AS MATERIALIZED (
    SELECT customer_id, array_agg(segment_id) AS segs FROM segments_membership
    WHERE segment_id = ANY(%(ids)s) AND {when}
    GROUP BY customer_id
)
SELECT 'pair', a, b, count(*) FROM m CROSS JOIN LATERAL unnest(m.segs) a CROSS JOIN LATERAL unnest(m.segs) b
WHERE a <= b GROUP BY a, b
UNION ALL
SELECT 'only', m.segs[1], NULL, count(*) FROM m WHERE cardinality(m.segs) = 1 GROUP BY m.segs[1]
UNION ALL
SELECT 'any', NULL, NULL, count(*) FROM m
"""


def overlap(*, segments: list[Segment], at: datetime | None = None) -> dict:
    """Pairwise intersections of the segments' members (now, or at `at`), each segment's
    exclusive count (members of no other listed segment) and the union — one statement:
    group the listed segments' stays by customer, then count the pairs of each
    customer's segment list."""
    ids = [s.pk for s in segments]
    when = "exited_at IS NULL" if at is None else "entered_at <= %(at)s AND (exited_at IS NULL OR exited_at > %(at)s)"
    pairs: dict[tuple[int, int], int] = {}
    only: dict[int, int] = {}
    union = 0
    with connection.cursor() as cursor:
        cursor.execute(_OVERLAP_SQL.format(when=when), {"ids": ids, "at": at})
        for kind, a, b, count in cursor.fetchall():
            if kind == "pair":
                pairs[a, b] = pairs[b, a] = count
            elif kind == "only":
                only[a] = count
            else:
                union = count
    matrix = [[pairs.get((a, b), 0) for b in ids] for a in ids]
    jaccard = []
    for i, a in enumerate(ids):
        row = []
        for j, b in enumerate(ids):
            inter, size_a, size_b = matrix[i][j], matrix[i][i], matrix[j][j]
            both = size_a + size_b - inter
            row.append(round(inter / both, 4) if both else None)
        jaccard.append(row)
    return {
        "keys": [s.key for s in segments],
        "segments": [{"key": s.key, "name": s.name, "size": matrix[i][i], "exclusive": only.get(s.pk, 0)}
                     for i, s in enumerate(segments)],
        "matrix": matrix, "jaccard": jaccard, "union": union,
    }


# ------------------------------------------------------------------ hygiene


def segment_settings() -> SegmentSettings:
    """The tenant's hygiene thresholds; a default row until an admin saves one."""
    return SegmentSettings.objects.order_by("id").first() or SegmentSettings()


_HYGIENE_SQL = """
WITH members AS MATERIALIZED ({members}),
n AS (SELECT count(*) AS size FROM members),
candidates AS (
    -- Jaccard ≥ j needs min(a, b) / max(a, b) ≥ j: only segments of comparable size
    -- (by their stored size, which the engine keeps with their memberships) can qualify.
    SELECT s.id, s.key, s.name,
           (SELECT count(*) FROM segments_membership o WHERE o.segment_id = s.id AND o.exited_at IS NULL) AS size
    FROM segments_segment s, n
    WHERE s.id IS DISTINCT FROM %(h_self)s AND s.kind <> 'snapshot' AND s.status <> 'archived' AND n.size > 0
      AND s.size >= ceil(n.size * %(h_j)s) AND s.size <= floor(n.size / %(h_j)s)
),
scored AS (
    SELECT c.key, c.name, c.size,
           (SELECT count(*) FROM segments_membership o JOIN members m ON m.id = o.customer_id
            WHERE o.segment_id = c.id AND o.exited_at IS NULL) AS inter
    FROM candidates c
)
SELECT n.size, s.key, s.name, s.size, s.inter,
       CASE WHEN n.size + s.size - s.inter > 0 THEN s.inter::numeric / (n.size + s.size - s.inter) END AS jaccard
FROM n LEFT JOIN scored s ON true
ORDER BY jaccard DESC NULLS LAST, s.key
"""


def is_stale(segment: Segment, *, now: datetime) -> bool:
    """Neither changed by an evaluation nor used for 90 days (a new segment counts from its creation)."""
    cutoff = now - STALE_AFTER
    created = segment.created_at or now
    return (segment.status != Segment.Status.ARCHIVED and (segment.last_changed_at or created) < cutoff
            and (segment.last_used_at or created) < cutoff)


def stale_segments(*, now: datetime) -> QuerySet[Segment]:
    """Segments for the quarterly review: no membership change and no use for 90 days."""
    cutoff = now - STALE_AFTER
    return (Segment.objects.exclude(status=Segment.Status.ARCHIVED)
            .alias(changed=Coalesce(F("last_changed_at"), F("created_at")), used=Coalesce(F("last_used_at"), F("created_at")))
            .filter(changed__lt=cutoff, used__lt=cutoff))


def hygiene(*, segment: Segment, now: datetime, use_memberships: bool = False) -> list[Warning]:
    """Warnings about a segment (saved, or a draft without a pk): `too_small` (fewer
    members than the tenant's minimum), `near_duplicate` (another segment's members have
    Jaccard ≥ 0.9 with these; names it and the value) and `stale` (listed for quarterly
    review). A dynamic segment's members are what its definition matches at `now` (its
    evaluation may still be queued) — or, with `use_memberships` once it has been
    evaluated (its rule did not change), its open memberships, which is cheaper; a static
    one's are its open memberships. One statement."""
    if segment.kind == Segment.Kind.SNAPSHOT:
        return []  # a frozen copy: small or equal to its source on purpose
    if segment.kind == Segment.Kind.DYNAMIC and not (use_memberships and segment.last_evaluated_at and segment.pk):
        sql, _, _ = compile_definition(segment.definition, now=now, self_key=segment.key)
        members, params = sql.text, dict(sql.params)
    else:
        members = "SELECT customer_id AS id FROM segments_membership WHERE segment_id = %(h_self)s AND exited_at IS NULL"
        params = {}
    params.update(h_self=segment.pk, h_j=NEAR_DUPLICATE)
    with connection.cursor() as cursor:
        cursor.execute(_HYGIENE_SQL.format(members=members), params)
        rows = cursor.fetchall()
    size = rows[0][0]
    warnings = []
    minimum = segment_settings().min_size
    if size < minimum and not (segment.kind == Segment.Kind.STATIC and size == 0):
        warnings.append(Warning("", "too_small", f"{size:,} customers match, fewer than the workspace's minimum of "
                                                 f"{minimum:,}: too few to act on or to measure.",
                                {"size": size, "min_size": minimum}))
    for _, key, name, other_size, inter, jaccard in rows:
        if key is None or jaccard is None or jaccard < NEAR_DUPLICATE:
            continue
        value = float(round(jaccard, 4))
        warnings.append(Warning("", "near_duplicate",
                                f"Nearly the same customers as “{name}” ({key}): Jaccard {value:.2f} "
                                f"({inter:,} in both, {size:,} here, {other_size:,} there).",
                                {"segment": key, "jaccard": value, "intersection": inter, "size": size,
                                 "other_size": other_size}))
    if is_stale(segment, now=now):
        warnings.append(Warning("", "stale", "Neither changed nor used for 90 days: listed for the quarterly review.",
                                {"last_changed_at": _iso(segment.last_changed_at),
                                 "last_used_at": _iso(segment.last_used_at)}))
    return warnings


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ------------------------------------------------------------------ static members


@dataclass(frozen=True)
class Resolved:
    customer_ids: list[int]
    unmatched: list[Problem]


def resolve_customers(items: list[Any], *, path: str) -> Resolved:
    """Customer ids for a list of customer ids (numbers) and external ids (strings); each
    item naming nobody is reported at `path[i]`. Two or three queries whatever the count."""
    numbers = {item for item in items if isinstance(item, int)}
    texts = {item for item in items if isinstance(item, str)}
    known = set(Customer.objects.filter(id__in=numbers).values_list("id", flat=True)) if numbers else set()
    by_external = customers_by_external_ids(texts) if texts else {}
    ids, unmatched = [], []
    for index, item in enumerate(items):
        found = item if isinstance(item, int) and item in known else by_external.get(item) if isinstance(item, str) else None
        if found is None:
            unmatched.append(Problem(f"{path}[{index}]", "unknown_customer", f"No customer is known as {item!r}."))
        else:
            ids.append(found)
    return Resolved(customer_ids=list(dict.fromkeys(ids)), unmatched=unmatched)


@dataclass(frozen=True)
class UploadRow:
    row: int  # 1-based line of the file (the header, when there is one, is row 1)
    value: str


def resolve_upload(rows: list[UploadRow], *, by_email: bool) -> tuple[list[int], list[dict]]:
    """Customer ids named by an uploaded column of external ids or emails, and a report of
    the rows naming nobody (or, for emails, more than one customer). A value is tried as an
    external id first, then — when `by_email` (the actor may see personal data) and it
    holds an @ — as an email, case-insensitively (customer_email_prefix_idx on upper(email))."""
    by_external = customers_by_external_ids({r.value for r in rows})
    emails = {r.value.upper() for r in rows if r.value not in by_external and "@" in r.value}
    by_email_ids: dict[str, list[int]] = {}
    if by_email and emails:
        for email, customer_id in (Customer.objects.annotate(e=Upper("email")).filter(e__in=emails)
                                   .values_list("e", "id")):
            by_email_ids.setdefault(email, []).append(customer_id)
    ids, unmatched = [], []
    for r in rows:
        if r.value in by_external:
            ids.append(by_external[r.value])
            continue
        matches = by_email_ids.get(r.value.upper(), [])
        if len(matches) == 1:
            ids.append(matches[0])
        elif len(matches) > 1:
            unmatched.append({"row": r.row, "value": r.value, "code": "ambiguous_email",
                              "message": f"{len(matches)} customers have this email; add them by external id."})
        elif "@" in r.value and not by_email:
            unmatched.append({"row": r.row, "value": r.value, "code": "pii_required",
                              "message": "Matching by email needs the “customers.view_pii” permission."})
        else:
            unmatched.append({"row": r.row, "value": r.value, "code": "unknown_customer",
                              "message": "No customer has this external id or email."})
    return list(dict.fromkeys(ids)), unmatched


# ------------------------------------------------------------------ versions


def definition_diff(before: Any, after: Any, *, labels: tuple[str, str] = ("before", "after")) -> dict:
    """A structural diff of two definitions (paths in the parser's syntax, e.g.
    `conditions[1].count.op`; list items compare by position) and a unified diff of their
    pretty JSON for the UI."""
    added, removed, changed = [], [], []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                sub = f"{path}.{key}" if path else key
                if key not in a:
                    added.append({"path": sub, "value": b[key]})
                elif key not in b:
                    removed.append({"path": sub, "value": a[key]})
                else:
                    walk(a[key], b[key], sub)
        elif isinstance(a, list) and isinstance(b, list):
            for index in range(max(len(a), len(b))):
                sub = f"{path}[{index}]"
                if index >= len(a):
                    added.append({"path": sub, "value": b[index]})
                elif index >= len(b):
                    removed.append({"path": sub, "value": a[index]})
                else:
                    walk(a[index], b[index], sub)
        elif a != b or isinstance(a, bool) != isinstance(b, bool):  # JSON: true is not 1; 1 is 1.0
            changed.append({"path": path, "from": a, "to": b})

    walk(before, after, "")
    pretty = lambda doc: json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).splitlines()  # noqa: E731
    text = "\n".join(difflib.unified_diff(pretty(before), pretty(after), *labels, lineterm=""))
    return {"added": added, "removed": removed, "changed": changed, "text": text}
