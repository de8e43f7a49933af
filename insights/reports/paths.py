"""Paths: the events customers did right after (or before) a chosen event, up to five
steps deep, for all customers or a segment — as a Sankey chart, with counts and shares.

Each customer is counted once, from the first time they did the event in the window (as
the rule language reads a window: half-open, clipped to `now`); their next (or previous)
events in the window, in time order (ties by arrival), make their path. Per step: the
busiest events (the rest are "(other)"), and the customers whose path ended before it.

One statement: the anchors, each customer's following events by a lateral index scan
(customer, timestamp), the transitions counted per step. Cached (cache.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


from common.replica import replica_reads
from common.errors import Code, DomainError, Problem
from insights.reports.cache import cached_report
from insights.reports.inputs import segment_problems
from segments.models import Segment
from segments.rules.nodes import RuleError, Window
from segments.selectors.rules import condition_context

MAX_DEPTH = 5
TOP_EVENTS = 8  # per step; the rest are OTHER
OTHER = "(other)"
DIRECTIONS = ("next", "previous")
DEFAULT_WINDOW = {"last": "30d"}


@dataclass(frozen=True)
class PathsQuery:
    event: str
    window: Window
    window_json: str
    direction: str = "next"
    depth: int = 3
    segment: str | None = None
    warnings: tuple[Problem, ...] = ()

    def cache_parts(self) -> tuple[str, ...]:
        return (self.event, self.window_json, self.direction, str(self.depth), self.segment or "")


@dataclass
class PathNode:
    event: str
    customers: int
    share: float | None  # of the customers who did the chosen event


@dataclass
class PathLink:
    step: int  # from step - 1 to step (0 is the chosen event)
    source: str
    target: str
    customers: int


@dataclass
class PathsReport:
    now: datetime
    event: str
    direction: str
    depth: int
    customers: int  # who did the chosen event in the window
    steps: list[list[PathNode]]  # steps 1..depth, busiest first
    ended: list[int]  # customers whose path has no step i (i = 1..depth)
    links: list[PathLink] = field(default_factory=list)
    segment: str | None = None
    warnings: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def paths_query(*, event: Any, window: Any = None, direction: Any = "next", depth: Any = 3,
                segment: Any = None) -> PathsQuery:
    """The event and window parse as an event condition's (same codes, paths `event` and
    `window.last` …); depth 1..5; direction next or previous."""
    window = DEFAULT_WINDOW if window is None else window
    problems, parsed, warnings = [], None, []
    try:
        parsed, warnings = condition_context(
            condition={"type": "event", "event": event, "window": window, "count": {"op": "gte", "value": 1}})
    except RuleError as error:
        problems += error.problems
    if parsed is not None and parsed.event == "*":
        problems.append(Problem("event", Code.INVALID_VALUE, "Choose one event (“*” is not a step)."))
    if direction not in DIRECTIONS:
        problems.append(Problem("direction", Code.INVALID_CHOICE, "“next” or “previous”."))
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        problems.append(Problem("depth", Code.OUT_OF_RANGE, f"From 1 to {MAX_DEPTH} steps."))
    problems += segment_problems(segment, "segment")
    if problems:
        raise DomainError(problems=problems)
    return PathsQuery(event=parsed.event, window=parsed.window, window_json=json.dumps(window, sort_keys=True),
                      direction=direction, depth=depth, segment=segment or None, warnings=tuple(warnings))


def paths_report(*, query: PathsQuery, now: datetime) -> PathsReport:
    return cached_report("paths", now=now, query=query.cache_parts(), compute=lambda: _compute(query, now))


def paths_sql(query: PathsQuery, now: datetime) -> tuple[str, dict]:
    """Rows (step, previous event, event, customers) and one (0, NULL, NULL, anchors)."""
    start, end = query.window.bounds(now)
    params = {"event": query.event, "end": end, "depth": query.depth}
    since = ""
    if start is not None:
        params["start"] = start
        since = " AND e.timestamp >= %(start)s"
    scope = ""
    if query.segment:
        params["segment"] = query.segment
        scope = (" AND e.customer_id IN (SELECT m.customer_id FROM segments_membership m JOIN segments_segment s "
                 "ON s.id = m.segment_id WHERE s.key = %(segment)s AND m.entered_at <= %(end)s "
                 "AND (m.exited_at IS NULL OR m.exited_at > %(end)s))")
    after = query.direction == "next"
    beyond = "(e.timestamp, e.id) > (a.timestamp, a.id)" if after else "(e.timestamp, e.id) < (a.timestamp, a.id)"
    order = "e.timestamp, e.id" if after else "e.timestamp DESC, e.id DESC"
    return f"""
WITH anchors AS MATERIALIZED (
    SELECT DISTINCT ON (e.customer_id) e.customer_id, e.timestamp, e.id FROM customers_event e
    WHERE e.name = %(event)s AND e.timestamp < %(end)s{since}{scope}
    ORDER BY e.customer_id, e.timestamp, e.id
),
steps AS (
    SELECT a.customer_id, n.step, n.name, lag(n.name, 1, %(event)s) OVER (PARTITION BY a.customer_id ORDER BY n.step) AS previous
    FROM anchors a CROSS JOIN LATERAL (
        SELECT e.name, row_number() OVER (ORDER BY {order}) AS step FROM customers_event e
        WHERE e.customer_id = a.customer_id AND {beyond} AND e.timestamp < %(end)s{since}
        ORDER BY {order} LIMIT %(depth)s
    ) n
)
SELECT step, previous, name, count(*) FROM steps GROUP BY step, previous, name
UNION ALL
SELECT 0, NULL, NULL, count(*) FROM anchors""", params


def _compute(query: PathsQuery, now: datetime) -> PathsReport:
    sql, params = paths_sql(query, now)
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    anchors = next(n for step, _, _, n in rows if step == 0)
    transitions = [(step, previous, name, n) for step, previous, name, n in rows if step]
    reached: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for step, _, name, n in transitions:
        reached[step][name] += n
    kept = {step: set(sorted(names, key=lambda k: (-names[k], k))[:TOP_EVENTS]) for step, names in reached.items()}

    def shown(step: int, name: str) -> str:
        return name if step == 0 or name in kept.get(step, ()) else OTHER

    steps, ended, links = [], [], defaultdict(int)
    for step in range(1, query.depth + 1):
        counts: dict[str, int] = defaultdict(int)
        for name, n in reached.get(step, {}).items():
            counts[shown(step, name)] += n
        steps.append([PathNode(event=name, customers=n, share=_ratio(n, anchors))
                      for name, n in sorted(counts.items(), key=lambda item: (item[0] == OTHER, -item[1], item[0]))])
        ended.append(anchors - sum(counts.values()))
    for step, previous, name, n in transitions:
        links[(step, shown(step - 1, previous), shown(step, name))] += n
    name = Segment.objects.filter(key=query.segment).values_list("name", flat=True).first() if query.segment else None
    return PathsReport(now=now, event=query.event, direction=query.direction, depth=query.depth, customers=anchors,
                       steps=steps, ended=ended, segment=name,
                       links=[PathLink(step, source, target, n) for (step, source, target), n in sorted(
                           links.items(), key=lambda item: (item[0][0], -item[1], item[0][1], item[0][2]))],
                       warnings=[p.as_dict() for p in query.warnings])


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
