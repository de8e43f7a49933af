"""STP targeting: segment → target → position. The board scores every live segment on
size, value (revenue of the last 90 days per member), growth (members now against 30 days
ago), reachability (the share of members consented and contactable: email with an address
on file, in-app, or ads),
engagement (the mean engagement score), and its overlap with the segments already chosen
as targets (a penalty: a second target that is mostly the first adds little). Each measure
is scaled 0..1 across the segments (by the largest; growth from the lowest to the
highest), weighted (weights editable, 0..5) and summed, overlap subtracted; segments rank
by that score.

A marketer marks targets and writes their positioning — value proposition, message and
channel. Saving the board stores a new version (weights and targets) and an audit line;
the newest version is the board in force. A target links to the plays that act on it
(the activation plan). Measures come from one statement over memberships, the revenue
events of the last 90 days, consents and metrics; cached as the reports are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from audit.services import audit_record
from campaigns.models import Play, TargetingBoard
from campaigns.review import LIVE_PLAYS
from common.actors import Actor
from common.errors import Code, DomainError, Problem
from common.jsonvalues import value_problem
from customers.models import MetricsSettings
from insights.reports.cache import cached_report
from segments.models import Segment
from tenants.permissions import ensure_permitted

MEASURES = ("size", "value", "growth", "reachability", "engagement", "overlap")
DEFAULT_WEIGHTS = {"size": 1.0, "value": 2.0, "growth": 1.0, "reachability": 1.0, "engagement": 1.0, "overlap": 1.0}
MAX_WEIGHT = 5
CHANNELS = ("email", "in_app", "ads", "sales", "success", "product", "other")
MAX_TARGETS = 20
MAX_TEXT = 1000
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
    target: dict | None = None  # the positioning, when a target
    plays: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------- the board


def board_current() -> TargetingBoard | None:
    return TargetingBoard.objects.order_by("-version").first()


def board_weights(board: TargetingBoard | None) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **(board.weights if board else {})}


def targeting_rows(*, weights: dict[str, float], targets: list[dict], now: datetime) -> list[TargetRow]:
    """Every live segment with members, scored with `weights` against `targets`, ranked."""
    # Reachability reads consents, which the reports' fingerprint does not: their newest change joins the key.
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM customers_consentchange")
        consents = str(cursor.fetchone()[0])
    facts = cached_report("targeting", now=now, query=(consents, *sorted(t["segment"] for t in targets)),
                          compute=lambda: _facts([t["segment"] for t in targets], now))
    rows = [TargetRow(key=f["key"], name=f["name"], size=f["size"], arpu=f["arpu"], growth=f["growth"],
                      reachability=f["reachability"], engagement=f["engagement"], overlap=f["overlap"])
            for f in facts]
    _score(rows, weights)
    chosen = {t["segment"]: t for t in targets}
    plays = _plays([r.key for r in rows if r.key in chosen])
    for row in rows:
        row.target, row.plays = chosen.get(row.key), plays.get(row.key, [])
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


def _plays(keys: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for play in Play.objects.filter(segment__key__in=keys, status__in=LIVE_PLAYS).select_related("segment"):
        found.setdefault(play.segment.key, []).append({"id": play.pk, "name": play.name, "status": play.status})
    return found


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


def _facts(target_keys: list[str], now: datetime) -> list[dict]:
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


# ---------------------------------------------------------------------- saving a version


def _weights_problems(weights: Any) -> tuple[dict[str, float], list[Problem]]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS), []
    if not isinstance(weights, dict):
        return {}, [Problem("weights", Code.INVALID_TYPE, "Weights are an object of measure → number.")]
    problems = [Problem(f"weights.{name}", Code.UNKNOWN_FIELD, f"Measures: {', '.join(MEASURES)}.")
                for name in weights if name not in MEASURES]
    for name, value in weights.items():
        if name in MEASURES and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or not 0 <= value <= MAX_WEIGHT):
            problems.append(Problem(f"weights.{name}", Code.OUT_OF_RANGE, f"A weight from 0 to {MAX_WEIGHT}."))
    return {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in weights.items() if k in MEASURES and not problems}}, problems


def _targets_problems(targets: Any) -> tuple[list[dict], list[Problem]]:
    if not isinstance(targets, list):
        return [], [Problem("targets", Code.INVALID_TYPE, "Targets are a list.")]
    if len(targets) > MAX_TARGETS:
        return [], [Problem("targets", Code.TOO_MANY, f"At most {MAX_TARGETS} targets.")]
    known = set(Segment.objects.exclude(status=Segment.Status.ARCHIVED)
                .filter(key__in=[t.get("segment") for t in targets if isinstance(t, dict)]).values_list("key", flat=True))
    cleaned, problems, seen = [], [], set()
    for i, target in enumerate(targets):
        path = f"targets[{i}]"
        if not isinstance(target, dict):
            problems.append(Problem(path, Code.INVALID_TYPE, "A target is an object."))
            continue
        problems += [Problem(f"{path}.{k}", Code.UNKNOWN_FIELD, "Not a field of a target.")
                     for k in target if k not in ("segment", "value_proposition", "message", "channel")]
        key = target.get("segment")
        if key not in known:
            problems.append(Problem(f"{path}.segment", Code.UNKNOWN_SEGMENT, f"No live segment “{key}”."))
        elif key in seen:
            problems.append(Problem(f"{path}.segment", Code.DUPLICATE, f"“{key}” is a target already."))
        seen.add(key)
        for name in ("value_proposition", "message"):
            text = target.get(name, "")
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                problems.append(Problem(f"{path}.{name}", Code.INVALID_VALUE, f"Text up to {MAX_TEXT} characters."))
        if target.get("channel", "email") not in CHANNELS:
            problems.append(Problem(f"{path}.channel", Code.INVALID_CHOICE, f"Channels: {', '.join(CHANNELS)}."))
        cleaned.append({"segment": key, "value_proposition": str(target.get("value_proposition", "")).strip(),
                        "message": str(target.get("message", "")).strip(), "channel": target.get("channel", "email")})
    return cleaned, problems


@transaction.atomic
def board_save(*, actor: Actor, weights: Any, targets: Any, note: Any = "", now: datetime) -> TargetingBoard:
    """A new version of the board (weights and targets with their positioning), audited."""
    ensure_permitted(actor, "segments.edit")
    if hostile := value_problem({"weights": weights, "targets": targets, "note": note}):
        raise DomainError(problems=[hostile])
    clean_weights, problems = _weights_problems(weights)
    clean_targets, more = _targets_problems(targets)
    problems += more
    if not isinstance(note, str) or len(note) > 500:
        problems.append(Problem("note", Code.INVALID_VALUE, "A note up to 500 characters."))
    if problems:
        raise DomainError(problems=problems)
    list(TargetingBoard.objects.select_for_update().order_by("-version")[:1])  # one saver at a time after the first
    version = (TargetingBoard.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    board = TargetingBoard.objects.create(version=version, weights=clean_weights, targets=clean_targets,
                                          note=note.strip(), author_id=getattr(actor, "user_id", None), created_at=now)
    audit_record(actor=actor, action="targeting.board_saved", target=board, target_label=f"v{version}",
                 changes={"weights": clean_weights, "targets": [t["segment"] for t in clean_targets]})
    return board
