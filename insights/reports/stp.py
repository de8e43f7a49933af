"""STP's segmentation and targeting analysis: every live segment scored on size, value
(revenue of the last 90 days per member), growth (members now against 30 days ago),
reachability (the share of members consented and contactable: email with an address on
file, in-app, or ads), engagement (the mean engagement score), and its overlap with the
segments already chosen as targets (a penalty: a second target that is mostly the first
adds little). Each measure is scaled 0..1 across the segments (by the largest; growth from
the lowest to the highest), weighted and summed, overlap subtracted; segments rank by that
score. Measures come from one statement over memberships, the revenue events of the last
90 days, consents and metrics; cached as the reports are.

The board a marketer saves (targets, their positioning, the plays acting on them) is
campaigns' (campaigns/targeting.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from customers.models import MetricsSettings
from insights.reports.cache import cached_report
from segments.models import Segment

MEASURES = ("size", "value", "growth", "reachability", "engagement", "overlap")
DEFAULT_WEIGHTS = {"size": 1.0, "value": 2.0, "growth": 1.0, "reachability": 1.0, "engagement": 1.0, "overlap": 1.0}
REVENUE_DAYS = 90


@dataclass
class TargetRow:
    key: str
    name: str
    size: int
    arpu: float | None  # revenue of the last 90 days per member
    growth: float | None
    reachability: float | None
    engagement: float | None
    overlap: float  # the largest member Jaccard with another target
    parts: dict[str, float] = field(default_factory=dict)  # each measure scaled 0..1
    score: float = 0.0
    rank: int = 0
    # Filled by the board (campaigns/targeting.py): the positioning when the segment is a
    # target, and the plays acting on it.
    target: dict | None = None
    plays: list[dict] = field(default_factory=list)


def segment_scores(*, weights: dict[str, float], target_keys: list[str], now: datetime) -> list[TargetRow]:
    """Every live segment with members, scored with `weights` against the targets, ranked."""
    # Reachability reads consents, which the reports' fingerprint does not: their newest change joins the key.
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM customers_consentchange")
        consents = str(cursor.fetchone()[0])
    facts = cached_report("targeting", now=now, query=(consents, *sorted(target_keys)),
                          compute=lambda: segment_facts(list(target_keys), now))
    rows = [TargetRow(key=f["key"], name=f["name"], size=f["size"], arpu=f["arpu"], growth=f["growth"],
                      reachability=f["reachability"], engagement=f["engagement"], overlap=f["overlap"])
            for f in facts]
    _score(rows, weights)
    return rows


def _score(rows: list[TargetRow], weights: dict[str, float]) -> None:
    def scaled(values: list[float | None], *, from_lowest: bool = False) -> list[float]:
        present = [v for v in values if v is not None]
        if not present:
            return [0.0] * len(values)
        low = min(present) if from_lowest else 0.0
        span = max(present) - low
        return [0.0 if v is None or span <= 0 else round((v - low) / span, 4) for v in values]

    columns = {
        "size": scaled([r.size for r in rows]), "value": scaled([r.arpu for r in rows]),
        "growth": scaled([r.growth for r in rows], from_lowest=True),
        "reachability": scaled([r.reachability for r in rows]), "engagement": scaled([r.engagement for r in rows]),
    }
    for i, row in enumerate(rows):
        row.parts = {name: column[i] for name, column in columns.items()} | {"overlap": row.overlap}
        row.score = round(sum(weights[m] * row.parts[m] for m in columns) - weights["overlap"] * row.overlap, 4)
    for rank, row in enumerate(sorted(rows, key=lambda r: (-r.score, r.key)), start=1):
        row.rank = rank
    rows.sort(key=lambda r: r.rank)


FACTS_SQL = """
WITH segs AS (
    SELECT id, key, name FROM segments_segment
    WHERE status <> 'archived' AND kind <> 'snapshot' AND size > 0
),
members AS MATERIALIZED (
    SELECT m.segment_id, m.customer_id FROM segments_membership m JOIN segs s ON s.id = m.segment_id
    WHERE m.exited_at IS NULL
),
revenue AS (
    SELECT e.customer_id, sum((e.properties ->> %(prop)s)::numeric)::float8 AS revenue FROM customers_event e
    WHERE e.name = %(revenue)s AND jsonb_typeof(e.properties -> %(prop)s) = 'number'
      AND e.timestamp >= %(since)s AND e.timestamp < %(now)s
    GROUP BY e.customer_id
),
reachable AS (
    -- consented and contactable: email needs an address on file; in-app and ads need the consent alone
    SELECT DISTINCT k.customer_id FROM customers_consent k JOIN customers_customer c ON c.id = k.customer_id
    WHERE k.granted AND (k.channel IN ('in_app', 'ads') OR (k.channel = 'email' AND COALESCE(c.email, '') <> ''))
),
past AS (
    SELECT m.segment_id, count(*) AS then FROM segments_membership m JOIN segs s ON s.id = m.segment_id
    WHERE m.entered_at <= %(then)s AND (m.exited_at IS NULL OR m.exited_at > %(then)s)
    GROUP BY m.segment_id
)
SELECT s.id, s.key, s.name, count(*) AS size, COALESCE(sum(r.revenue), 0) AS revenue,
       count(x.customer_id) AS reachable, avg(cm.engagement_score)::float8 AS engagement, COALESCE(p.then, 0)
FROM segs s JOIN members m ON m.segment_id = s.id
LEFT JOIN revenue r ON r.customer_id = m.customer_id
LEFT JOIN reachable x ON x.customer_id = m.customer_id
LEFT JOIN customers_customermetrics cm ON cm.customer_id = m.customer_id
LEFT JOIN past p ON p.segment_id = s.id
GROUP BY s.id, s.key, s.name, p.then
"""

OVERLAP_SQL = """
SELECT a.segment_id, b.segment_id, count(*) FROM segments_membership a
JOIN segments_membership b ON b.customer_id = a.customer_id AND b.exited_at IS NULL
    AND b.segment_id = ANY(%(targets)s::bigint[]) AND b.segment_id <> a.segment_id
WHERE a.exited_at IS NULL
GROUP BY a.segment_id, b.segment_id
"""


def segment_facts(target_keys: list[str], now: datetime) -> list[dict]:
    """Per live segment with members: size, revenue per member, growth, reachability,
    engagement and its largest overlap with a target."""
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    params = {"now": now, "since": now - timedelta(days=REVENUE_DAYS), "then": now - timedelta(days=30),
              "revenue": settings.revenue_event, "prop": settings.revenue_property}
    with connection.cursor() as cursor:
        cursor.execute(FACTS_SQL, params)
        rows = cursor.fetchall()
        sizes = {row[0]: row[3] for row in rows}
        target_ids = list(Segment.objects.filter(key__in=target_keys).values_list("id", flat=True))
        overlap: dict[int, float] = {}
        if target_ids:
            cursor.execute(OVERLAP_SQL, {"targets": target_ids})
            for a, b, inter in cursor.fetchall():
                union = sizes.get(a, 0) + sizes.get(b, 0) - inter
                if union > 0:
                    overlap[a] = max(overlap.get(a, 0.0), round(inter / union, 4))
    return [{"key": key, "name": name, "size": size, "arpu": round(revenue / size, 2) if size else None,
             "growth": round((size - then) / then, 4) if then else None,
             "reachability": round(reachable / size, 4) if size else None,
             "engagement": None if engagement is None else round(engagement, 2), "overlap": overlap.get(pk, 0.0)}
            for pk, key, name, size, revenue, reachable, engagement, then in rows]
