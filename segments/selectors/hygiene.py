"""Whether segments still earn their keep: the workspace's minimum size, near-duplicates
by member overlap, staleness for the quarterly review, and the overlap of several segments."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    F,
    QuerySet,
)
from django.db.models.functions import Coalesce

from segments.models import (
    Segment,
    SegmentSettings,
)
from segments.selectors.preview import Warning, compile_definition

NEAR_DUPLICATE = 0.9  # member Jaccard at or above which two segments are near-duplicates
STALE_AFTER = timedelta(days=90)
MAX_OVERLAP = 10
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
    group the listed segments' memberships by customer, then count the pairs of each
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
