"""Journey maps: a segment's customers along stages (awareness → activation → adoption →
expansion → advocacy by default, editable), each stage marked by events.

A member has reached a stage when they did any of its events (before `now`); they are *in*
the furthest stage they reached (stages are ordered, so a later stage counts even if an
earlier one's events were skipped). Per stage: the members in it now, the members who have
reached it, and the median time from sign-up (else the profile's creation) to their first
event of the stage. Members who reached none are "not started". One statement; cached.

The map itself — stage names, events, and notes on goals and pains — is stored per segment
(insights.models.JourneyMap) and written by journey_save.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from audit.services import audit_record
from common.replica import replica_reads
from common.actors import Actor
from common.errors import Code, DomainError, Problem
from common.jsonvalues import value_problem
from insights.models import JourneyMap
from insights.reports.cache import cached_report
from segments.models import Segment
from tenants.permissions import ensure_permitted

DEFAULT_STAGES = [
    {"name": "Awareness", "events": ["page_viewed"], "goals": "", "pains": ""},
    {"name": "Activation", "events": ["user_signed_up", "project_created"], "goals": "", "pains": ""},
    {"name": "Adoption", "events": ["feature_x_used", "report_exported"], "goals": "", "pains": ""},
    {"name": "Expansion", "events": ["subscription_upgraded", "invite_sent"], "goals": "", "pains": ""},
    {"name": "Advocacy", "events": ["referral_sent"], "goals": "", "pains": ""},
]
MAX_STAGES = 8
MAX_EVENTS = 20
MAX_NOTE = 1000


@dataclass
class StageResult:
    name: str
    events: list[str]
    goals: str
    pains: str
    now: int  # members whose furthest stage this is
    now_share: float | None
    reached: int
    reached_share: float | None
    median_days: float | None  # from sign-up to the stage's first event


@dataclass
class JourneyReport:
    now: datetime
    segment: str
    members: int
    not_started: int
    stages: list[StageResult] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def clean_stages(stages: Any) -> tuple[list[dict], list[Problem]]:
    if hostile := value_problem(stages, "stages"):
        return [], [hostile]
    if not isinstance(stages, list) or not 1 <= len(stages) <= MAX_STAGES:
        return [], [Problem("stages", Code.INVALID_VALUE, f"A journey has 1 to {MAX_STAGES} stages.")]
    cleaned, problems, names = [], [], set()
    for i, stage in enumerate(stages):
        path = f"stages[{i}]"
        if not isinstance(stage, dict):
            problems.append(Problem(path, Code.INVALID_TYPE, "A stage is an object."))
            continue
        problems += [Problem(f"{path}.{k}", Code.UNKNOWN_FIELD, "Not a field of a stage.")
                     for k in stage if k not in ("name", "events", "goals", "pains")]
        name, events = stage.get("name"), stage.get("events")
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            problems.append(Problem(f"{path}.name", Code.REQUIRED, "Name the stage (≤ 60 characters)."))
        elif name.strip().lower() in names:
            problems.append(Problem(f"{path}.name", Code.DUPLICATE, f"Two stages are named “{name.strip()}”."))
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS or not all(
                isinstance(e, str) and 0 < len(e.strip()) <= 200 for e in events):
            problems.append(Problem(f"{path}.events", Code.INVALID_VALUE,
                                    f"1 to {MAX_EVENTS} event names mark a stage."))
        for note in ("goals", "pains"):
            if not isinstance(stage.get(note, ""), str) or len(stage.get(note, "")) > MAX_NOTE:
                problems.append(Problem(f"{path}.{note}", Code.INVALID_VALUE, f"Text up to {MAX_NOTE} characters."))
        if isinstance(name, str):
            names.add(name.strip().lower())
        if not problems:
            cleaned.append({"name": name.strip(), "events": list(dict.fromkeys(e.strip() for e in events)),
                            "goals": stage.get("goals", "").strip(), "pains": stage.get("pains", "").strip()})
    return cleaned, problems


def journey_report(*, segment: Segment, stages: list[dict], now: datetime) -> JourneyReport:
    parts = (segment.key, json.dumps(stages, sort_keys=True))
    return cached_report("journey", now=now, query=parts, compute=lambda: _compute(segment, stages, now))


def journey_sql(stages: int) -> str:
    """Each member's first time at every stage as columns of one GROUP BY over the stages'
    events (joined to the members, so the planner hashes them rather than probing the
    event index per member and event name), then counted per stage."""
    firsts = ", ".join(f"min(e.timestamp) FILTER (WHERE e.name = ANY(%(stage_{i})s)) AS t{i}" for i in range(stages))
    current = " ".join(f"WHEN t{i} IS NOT NULL THEN {i}" for i in range(stages - 1, -1, -1))
    measures = ", ".join(f"count(t{i})::float8 AS r{i}, percentile_cont(0.5) WITHIN GROUP ("
                         f"ORDER BY extract(epoch FROM t{i} - COALESCE(c.signed_up_at, c.created_at)) / 86400) AS d{i}"
                         for i in range(stages))
    unpivot = ", ".join(f"('reached', {i}, r{i}), ('days', {i}, d{i})" for i in range(stages))
    return f"""
WITH members AS MATERIALIZED (
    SELECT m.customer_id FROM segments_membership m
    WHERE m.segment_id = %(segment)s AND m.entered_at <= %(now)s AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
),
firsts AS MATERIALIZED (
    SELECT e.customer_id, {firsts}
    FROM customers_event e JOIN members m ON m.customer_id = e.customer_id
    WHERE e.timestamp < %(now)s AND e.name = ANY(%(names)s)
    GROUP BY e.customer_id
)
SELECT 'members', NULL::int, count(*)::float8 FROM members
UNION ALL
SELECT 'now', stage, count(*) FROM (SELECT CASE {current} END AS stage FROM firsts) f
WHERE stage IS NOT NULL GROUP BY stage
UNION ALL
SELECT v.kind, v.stage, v.value
FROM (SELECT {measures} FROM firsts f JOIN customers_customer c ON c.id = f.customer_id) x
CROSS JOIN LATERAL (VALUES {unpivot}) AS v(kind, stage, value)
"""


def _compute(segment: Segment, stages: list[dict], now: datetime) -> JourneyReport:
    params = {"segment": segment.pk, "now": now, "names": [name for stage in stages for name in stage["events"]],
              **{f"stage_{i}": list(stage["events"]) for i, stage in enumerate(stages)}}
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(journey_sql(len(stages)), params)
        facts = {(kind, stage): value for kind, stage, value in cursor.fetchall()}
    members = int(facts.get(("members", None), 0))

    def share(n: int) -> float | None:
        return round(n / members, 4) if members else None

    results = []
    for index, stage in enumerate(stages):
        in_now, reached = int(facts.get(("now", index), 0)), int(facts.get(("reached", index), 0))
        days = facts.get(("days", index))
        results.append(StageResult(name=stage["name"], events=stage["events"], goals=stage.get("goals", ""),
                                   pains=stage.get("pains", ""), now=in_now, now_share=share(in_now), reached=reached,
                                   reached_share=share(reached),
                                   median_days=None if days is None else round(float(days), 1)))
    return JourneyReport(now=now, segment=segment.key, members=members,
                         not_started=members - sum(r.now for r in results), stages=results)


@transaction.atomic
def journey_save(*, actor: Actor, segment: Segment, stages: Any, now: datetime):
    """The segment's journey map (its stages replace the previous ones), audited."""
    ensure_permitted(actor, "segments.edit")
    cleaned, problems = clean_stages(stages)
    if problems:
        raise DomainError(problems=problems)
    journey, _ = JourneyMap.objects.update_or_create(
        segment=segment, defaults={"stages": cleaned, "author_id": getattr(actor, "user_id", None), "updated_at": now})
    audit_record(actor=actor, action="insights.journey_saved", target=segment, target_label=segment.key,
                 changes={"stages": [s["name"] for s in cleaned]})
    return journey


def journey_stages(segment: Segment) -> tuple[list[dict], bool]:
    """The segment's stages, or the defaults (False: not saved yet)."""
    journey = JourneyMap.objects.filter(segment=segment).first()
    return (journey.stages, True) if journey else ([dict(s) for s in DEFAULT_STAGES], False)
