"""Funnels: ordered steps (2..10 events with property filters) done within a conversion
window, for all customers or a segment's members, broken down by a trait or by segments.

A funnel *is* the rule language's sequence (shared/specs/segment-rules.md): its steps,
`within` (from the first step to the last) and `window` (the period every step falls in)
parse as a sequence condition does, with the same codes and paths. A customer reaches
step k when a sequence of the first k steps matches them — the compiler's greedy chain
from each first-step event (segments.rules.compile.sequence_chains), the best start kept
per customer — so "those who dropped at step k" is the rule `sequence(steps 1..k-1) AND
NOT sequence(steps 1..k)` and a segment of it has exactly the funnel's count (dropoff_definition).

Per step: customers who reached it, conversion from the first step and from the previous
one, drop-off, and the median and 90th percentile of the time from the previous step (of
the chain that reached it). One statement over the steps' events; cached (cache.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


from common.replica import replica_reads
from common.errors import Code, DomainError, Problem, SegmentCode
from common.jsonvalues import text_problem
from customers.models import TraitDefinition
from insights.reports.cache import cached_report
from insights.reports.inputs import segment_problems
from segments.models import Segment
from segments.rules.compile import sequence_chains
from segments.rules.nodes import RuleError, SequenceCondition
from segments.rules.vocabulary import BUILTIN_TRAITS
from segments.selectors.rules import condition_context

MAX_BREAKDOWN_SEGMENTS = 10
TOP_VALUES = 9  # a trait breakdown's busiest values; the rest are one "Other" group
DEFAULT_WITHIN = "7d"
DEFAULT_WINDOW = {"last": "30d"}
BREAKDOWN_TYPES = ("string", "boolean")
ALL, VALUE, UNSET, OTHER = 0, 1, 2, 3  # the kinds of the statement's groups


@dataclass(frozen=True)
class FunnelQuery:
    sequence: SequenceCondition
    definition: dict  # {"steps", "within", "window"} as given: the rule the drop-off segments use
    segment: str | None = None
    trait: str | None = None  # breakdown by a trait ("country", "traits.role")
    segments: tuple[str, ...] = ()  # or by segments
    warnings: tuple[Problem, ...] = ()

    def cache_parts(self) -> tuple[str, ...]:
        return (json.dumps(self.definition, sort_keys=True, default=str), self.segment or "", self.trait or "",
                *self.segments)


@dataclass
class FunnelStep:
    number: int
    event: str
    label: str  # the event and its property filters, as a person reads them
    reached: int
    conversion: float | None  # of those who did the first step
    from_previous: float | None
    dropped: int  # reached the previous step, not this one
    median_seconds: float | None  # from the previous step
    p90_seconds: float | None


@dataclass
class FunnelGroup:
    key: str  # "all", a segment's key, a trait's value; "(not set)" and "(other)" for those groups
    label: str
    steps: list[FunnelStep]
    median_total_seconds: float | None  # first step to last, of those who converted
    p90_total_seconds: float | None


@dataclass
class FunnelReport:
    now: datetime
    start: datetime | None
    end: datetime
    within_seconds: float
    segment: str | None
    breakdown: str | None  # "trait:<field>" or "segments"
    overall: FunnelGroup
    groups: list[FunnelGroup] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(now=self.now.isoformat(), start=self.start.isoformat() if self.start else None,
                    end=self.end.isoformat())
        return data


# ---------------------------------------------------------------------- input


def funnel_query(*, steps: Any, within: Any = DEFAULT_WITHIN, window: Any = None, segment: Any = None,
                 breakdown: Any = None) -> FunnelQuery:
    """Checked input, every problem at once: the steps, `within` and `window` as a sequence
    condition has them (paths `steps[1].where[0].op`, …), the segment to read, and a
    breakdown `{"trait": field}` or `{"segments": [keys]}`."""
    definition = {"steps": steps, "within": within, "window": DEFAULT_WINDOW if window is None else window}
    problems, warnings, sequence = [], (), None
    try:
        sequence, warnings = _sequence(definition)
    except RuleError as error:
        problems += error.problems
    problems += segment_problems(segment, "segment")
    trait, segments, more = _breakdown(breakdown)
    problems += more
    if problems:
        raise DomainError(problems=problems)
    return FunnelQuery(sequence=sequence, definition=definition, segment=segment or None, trait=trait,
                       segments=segments, warnings=tuple(warnings))


def _sequence(definition: dict) -> tuple[SequenceCondition, list[Problem]]:
    """The steps parsed by the rule parser, its paths made the funnel's own."""
    return condition_context(condition={"type": "sequence", **definition})


def _breakdown(breakdown: Any) -> tuple[str | None, tuple[str, ...], list[Problem]]:
    if breakdown is None or breakdown == {}:
        return None, (), []
    if not isinstance(breakdown, dict) or len(breakdown) != 1 or not ({"trait", "segments"} & set(breakdown)):
        return None, (), [Problem("breakdown", Code.INVALID_VALUE, "Break down by {“trait”: field} or "
                                                                   "{“segments”: [keys]}.")]
    if "trait" in breakdown:
        field_, problem = breakdown["trait"], breakdown_trait_problem(breakdown["trait"])
        return (None, (), [problem]) if problem else (field_, (), [])
    keys = breakdown["segments"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return None, (), [Problem("breakdown.segments", Code.INVALID_TYPE, "A list of segment keys.")]
    keys = list(dict.fromkeys(keys))
    if not keys:
        return None, (), [Problem("breakdown.segments", Code.REQUIRED, "Choose at least one segment.")]
    if len(keys) > MAX_BREAKDOWN_SEGMENTS:
        return None, (), [Problem("breakdown.segments", Code.TOO_MANY,
                                  f"Break down by at most {MAX_BREAKDOWN_SEGMENTS} segments.")]
    problems = [p for i, key in enumerate(keys) for p in segment_problems(key, f"breakdown.segments[{i}]")]
    return None, tuple(keys), problems


def breakdown_traits() -> list[str]:
    """The traits a funnel may break down by: text and yes/no traits that are not personal data."""
    builtin = [key for key, spec in BUILTIN_TRAITS.items() if spec.type in BREAKDOWN_TYPES and not spec.is_pii]
    custom = TraitDefinition.objects.filter(is_builtin=False, is_pii=False, type__in=BREAKDOWN_TYPES)
    return builtin + [f"traits.{key}" for key in custom.order_by("key").values_list("key", flat=True)]


def breakdown_trait_problem(field_: Any) -> Problem | None:
    path = "breakdown.trait"
    if not isinstance(field_, str) or not field_:
        return Problem(path, Code.INVALID_TYPE, "A trait: “country” or “traits.<key>”.")
    if found := text_problem(field_):
        return Problem(path, *found)
    spec = BUILTIN_TRAITS.get(field_)
    if spec is None and field_.startswith("traits."):
        spec = TraitDefinition.objects.filter(key=field_[len("traits."):], is_builtin=False).first()
    if spec is None:
        return Problem(path, SegmentCode.UNKNOWN_TRAIT, f"No trait “{field_}”.")
    if spec.is_pii or spec.type not in BREAKDOWN_TYPES:
        return Problem(path, Code.INVALID_VALUE, "Break down by a text or yes/no trait that is not personal data.")
    return None


# ---------------------------------------------------------------------- the report


def funnel_report(*, query: FunnelQuery, now: datetime) -> FunnelReport:
    return cached_report("funnel", now=now, query=query.cache_parts(), compute=lambda: _compute(query, now))


def _compute(query: FunnelQuery, now: datetime) -> FunnelReport:
    sql, params = funnel_sql(query, now)
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_group = {(row[0], row[1]): row[2:] for row in rows}
    labels = [step_label(step) for step in query.sequence.steps]
    start, end = query.sequence.window.bounds(now)
    overall = _group("all", "All customers" if not query.segment else _segment_name(query.segment),
                     by_group.get((ALL, None)), query.sequence, labels)
    report = FunnelReport(now=now, start=start, end=end, within_seconds=query.sequence.within.total_seconds(),
                          segment=query.segment, overall=overall,
                          breakdown=f"trait:{query.trait}" if query.trait else "segments" if query.segments else None,
                          warnings=[p.as_dict() for p in query.warnings])
    report.groups = _breakdown_groups(query, by_group, labels)
    return report


def _segment_name(key: str) -> str:
    return Segment.objects.filter(key=key).values_list("name", flat=True).first() or key


def _breakdown_groups(query: FunnelQuery, by_group: dict, labels: list[str]) -> list[FunnelGroup]:
    sequence = query.sequence
    if query.segments:
        names = dict(Segment.objects.filter(key__in=query.segments).values_list("key", "name"))
        return [_group(key, names.get(key, key), by_group.get((VALUE, key)), sequence, labels)
                for key in query.segments]
    if not query.trait:
        return []
    values = sorted(((g, facts) for (kind, g), facts in by_group.items() if kind == VALUE),
                    key=lambda item: (-item[1][0], item[0]))
    groups = [_group(g, g or "(empty)", facts, sequence, labels) for g, facts in values]
    for kind, key in ((OTHER, "(other)"), (UNSET, "(not set)")):
        if (kind, None) in by_group:
            groups.append(_group(key, key, by_group[(kind, None)], sequence, labels))
    return groups


def _group(key: str, label: str, facts, sequence: SequenceCondition, labels: list[str]) -> FunnelGroup:
    """One group's steps from its row: reached_1..k, then [median, p90] per gap and of the total."""
    k = len(sequence.steps)
    reached = list(facts[:k]) if facts else [0] * k
    gaps = list(facts[k:]) if facts else [None] * k
    steps = []
    for i, step in enumerate(sequence.steps):
        gap = gaps[i - 1] if i else None
        steps.append(FunnelStep(
            number=i + 1, event=step.event, label=labels[i], reached=reached[i],
            conversion=_ratio(reached[i], reached[0]), from_previous=_ratio(reached[i], reached[i - 1]) if i else None,
            dropped=reached[i - 1] - reached[i] if i else 0,
            median_seconds=_seconds(gap, 0), p90_seconds=_seconds(gap, 1)))
    total = gaps[k - 1]
    return FunnelGroup(key=key, label=label, steps=steps, median_total_seconds=_seconds(total, 0),
                       p90_total_seconds=_seconds(total, 1))


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(pair, index: int) -> float | None:
    return None if not pair or pair[index] is None else round(float(pair[index]), 1)


def step_label(step) -> str:
    """“page_viewed where path = "/pricing"”: the event and its filters."""
    if not step.where:
        return step.event
    filters = " and ".join(f"{f.property} {f.cmp.op} {_shown(f.cmp.value)}" for f in step.where)
    return f"{step.event} where {filters}"


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return f"“{value}”" if isinstance(value, str) else str(value)


def funnel_sql(query: FunnelQuery, now: datetime) -> tuple[str, dict]:
    """The funnel as one statement: every start's greedy chain (the compiler's), the best
    per customer (furthest step, then earliest start), counted per group with percentiles
    of the time between steps. Groups: (ALL, NULL), then the breakdown's."""
    chains = sequence_chains(query.sequence, now=now)
    params = dict(chains.params)
    k = len(query.sequence.steps)
    times = ", ".join(f"t{i}" for i in range(1, k + 1))
    level = " + ".join(["1", *(f"(t{i} IS NOT NULL)::int" for i in range(2, k + 1))])
    scope = ""
    if query.segment:
        params["f_segment"] = query.segment
        scope = f"WHERE ch.customer_id IN ({_members('f_segment')})"
    params["f_now"] = now
    counts = ", ".join(f"count(*) FILTER (WHERE level >= {i}) AS reached_{i}" for i in range(1, k + 1))
    gaps = ", ".join(f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM t{i} - t{i - 1}))"
                     for i in range(2, k + 1))
    total = f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM t{k} - t1))"
    grouped, extra = _grouped(query, params)
    return f"""
WITH chains AS ({chains.text}),
best AS MATERIALIZED (
    SELECT DISTINCT ON (customer_id) customer_id, level, {times}
    FROM (SELECT ch.*, {level} AS level FROM chains ch {scope}) leveled
    ORDER BY customer_id, level DESC, t1
){extra},
grouped AS ({grouped})
SELECT kind, g, {counts}, {gaps}, {total}
FROM grouped GROUP BY kind, g""", params


def _members(param: str) -> str:
    """The customers of the segment keyed by %(param)s at %(f_now)s."""
    return (f"SELECT m.customer_id FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id "
            f"WHERE s.key = %({param})s AND m.entered_at <= %(f_now)s "
            f"AND (m.exited_at IS NULL OR m.exited_at > %(f_now)s)")


def _grouped(query: FunnelQuery, params: dict) -> tuple[str, str]:
    """The rows per group (a customer once per group it is in) and any CTEs they need."""
    everyone = f"SELECT {ALL} AS kind, NULL::text AS g, best.* FROM best"
    if query.segments:
        params["f_segments"] = list(query.segments)
        return (f"{everyone} UNION ALL SELECT {VALUE}, s.key, best.* FROM best "
                f"JOIN segments_membership m ON m.customer_id = best.customer_id "
                f"JOIN segments_segment s ON s.id = m.segment_id "
                f"WHERE s.key = ANY(%(f_segments)s) AND m.entered_at <= %(f_now)s "
                f"AND (m.exited_at IS NULL OR m.exited_at > %(f_now)s)"), ""
    if not query.trait:
        return everyone, ""
    params["f_top"] = TOP_VALUES
    extra = f""",
valued AS (
    SELECT {_trait_value(query.trait, params)} AS v, best.* FROM best JOIN customers_customer c ON c.id = best.customer_id
),
ranked AS (SELECT v, row_number() OVER (ORDER BY count(*) DESC, v) AS r FROM valued WHERE v IS NOT NULL GROUP BY v)"""
    breakdown = (f"SELECT CASE WHEN valued.v IS NULL THEN {UNSET} WHEN r.r <= %(f_top)s THEN {VALUE} ELSE {OTHER} END, "
                 f"CASE WHEN r.r <= %(f_top)s THEN valued.v END, "
                 f"valued.customer_id, valued.level, {', '.join(f'valued.t{i}' for i in range(1, len(query.sequence.steps) + 1))} "
                 f"FROM valued LEFT JOIN ranked r ON r.v = valued.v")
    return f"{everyone} UNION ALL {breakdown}", extra


def _trait_value(field_: str, params: dict) -> str:
    """The trait as text (NULL when missing): a built-in column (its name is from
    BUILTIN_TRAITS, checked) or a custom trait read from `traits`."""
    if field_ in BUILTIN_TRAITS:
        return f"c.{field_}::text"
    params["f_trait"] = field_[len("traits."):]
    return "c.traits ->> %(f_trait)s"


# ---------------------------------------------------------------------- drop-offs


def dropoff_definition(query: FunnelQuery, step: int) -> dict:
    """The rule of those who reached step - 1 and not step `step` (2..k), in the funnel's
    segment when it has one: a sequence of the first steps and a negated one of one more
    (an event condition when only the first step is reached)."""
    steps, within, window = query.definition["steps"], query.definition["within"], query.definition["window"]
    conditions = [_reached(steps[:step - 1], within, window),
                  {**_reached(steps[:step], within, window), "negate": True}]
    if query.segment:
        conditions.append({"type": "segment", "segment": query.segment, "op": "in"})
    return {"version": 1, "match": "all", "conditions": conditions}


def _reached(steps: list[dict], within: str, window: dict) -> dict:
    if len(steps) == 1:
        first = steps[0]
        return {"type": "event", "event": first["event"], **({"where": first["where"]} if first.get("where") else {}),
                "window": window, "count": {"op": "gte", "value": 1}}
    return {"type": "sequence", "steps": steps, "within": within, "window": window}


def dropoff_step_problem(query: FunnelQuery, step: Any) -> Problem | None:
    k = len(query.sequence.steps)
    if isinstance(step, bool) or not isinstance(step, int) or not 2 <= step <= k:
        return Problem("step", Code.OUT_OF_RANGE, f"Drop-offs are at a step from 2 to {k}.")
    return None
