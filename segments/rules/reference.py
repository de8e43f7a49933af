"""The plain-Python evaluator: one customer's facts in, true or false out. It is the
oracle the compiled SQL is tested against, and `explain` is built on it, so it is written
for obviousness, not speed: each rule of the contract is one small function here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from segments.rules.nodes import (
    Comparison, ConsentCondition, EventCondition, Group, Measure, MetricCondition, Moment, PropertyFilter,
    SegmentCondition, SequenceCondition, Step, SurveyCondition, TraitCondition, When, Window, utc_midnight,
)
from segments.rules.vocabulary import ANY_EVENT, PRESENCE, json_type, parse_datetime
from segments.rules.zones import local_time

@dataclass(frozen=True)
class EventFact:
    name: str
    timestamp: datetime
    properties: dict = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True)
class SurveyFact:
    survey: str
    score: Decimal | None
    responded_at: datetime
    question: str = ""
    id: int = 0


@dataclass
class CustomerFacts:
    id: int
    builtin: dict[str, Any] = field(default_factory=dict)  # column → stored value
    traits: dict[str, Any] = field(default_factory=dict)  # custom traits (JSONB)
    events: list[EventFact] = field(default_factory=list)
    surveys: list[SurveyFact] = field(default_factory=list)
    consents: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    segments: set[str] = field(default_factory=set)  # keys of segments the customer is in at `now`


# ------------------------------------------------------------------------ values


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def typed(value: Any, type_: str) -> Any:
    """A stored value as the comparison's type, or None when missing or of another type."""
    if value is None:
        return None
    if type_ == "string":
        return value if isinstance(value, str) else None
    if type_ == "number":
        return _decimal(value) if json_type(value) == "number" else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "datetime":
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc)
        if isinstance(value, date):
            return utc_midnight(value)
        return parse_datetime(value) if isinstance(value, str) else None
    if type_ == "list":
        return value if isinstance(value, list) else None
    return value


def _same(a: Any, b: Any) -> bool:
    """JSON equality: types never coerce ("5" ≠ 5, true ≠ 1); numbers compare exactly."""
    kind = json_type(a)
    if kind is None or kind != json_type(b):
        return False
    return _decimal(a) == _decimal(b) if kind == "number" else a == b


def _after_or_at(t: datetime, bound: Moment) -> bool:  # t ≥ bound
    return t >= bound.start


def _at_or_before(t: datetime, bound: Moment) -> bool:  # t ≤ bound (a date takes in its whole day)
    return t < bound.end if bound.is_date else t <= bound.value


def next_anniversary(t: datetime, now: datetime) -> date:
    """The first day on or after today (UTC) that has `t`'s UTC month and day; 29 February
    falls on 28 February in years without one."""
    today, day = now.astimezone(timezone.utc).date(), t.astimezone(timezone.utc).date()

    def in_year(year: int) -> date:
        return date(year, 2, 28) if (day.month, day.day) == (2, 29) and not _leap(year) else day.replace(year=year)

    this_year = in_year(today.year)
    return this_year if this_year >= today else in_year(today.year + 1)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _moment_cmp(op: str, t: datetime, value, now: datetime) -> bool:
    if op == "anniversary_within":
        return next_anniversary(t, now) < now.astimezone(timezone.utc).date() + value
    if op == "within_last":
        return now - value <= t < now
    if op == "more_than_ago":
        return t < now - value
    if op in ("eq", "neq"):
        same = (value.start <= t < value.end) if value.is_date else t == value.value
        return same if op == "eq" else not same
    if op in ("gt", "after"):
        return not _at_or_before(t, value)
    if op == "gte":
        return _after_or_at(t, value)
    if op in ("lt", "before"):
        return not _after_or_at(t, value)
    if op == "lte":
        return _at_or_before(t, value)
    if op == "between":
        return _after_or_at(t, value[0]) and _at_or_before(t, value[1])
    raise ValueError(op)


def compare(cmp: Comparison, stored: Any, now: datetime) -> bool:
    """Does a stored value (already typed; None = missing) satisfy the comparison?"""
    if cmp.op in PRESENCE:
        return (stored is not None) == (cmp.op == "is_set")
    if stored is None:
        return False
    op, value = cmp.op, cmp.value
    if cmp.type == "datetime" or isinstance(value, Moment) or (op == "between" and isinstance(value[0], Moment)):
        return _moment_cmp(op, stored, value, now)
    if cmp.type == "list":
        if op == "has_any":
            return any(_same(v, item) for v in value for item in stored)
        if op == "has_all":
            return all(any(_same(v, item) for item in stored) for v in value)
        return not any(_same(v, item) for v in value for item in stored)  # has_none
    if op == "eq":
        return stored == value
    if op == "neq":
        return stored != value
    if op == "in":
        return stored in value
    if op == "not_in":
        return stored not in value
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        text, needle = stored.lower(), value.lower()
        return {"contains": needle in text, "not_contains": needle not in text,
                "starts_with": text.startswith(needle), "ends_with": text.endswith(needle)}[op]
    if op == "gt":
        return stored > value
    if op == "gte":
        return stored >= value
    if op == "lt":
        return stored < value
    if op == "lte":
        return stored <= value
    if op == "between":
        return value[0] <= stored <= value[1]
    raise ValueError(op)


# ------------------------------------------------------------------------ conditions


def _as_compared(stored: Any, cmp: Comparison) -> Any:
    """Presence ops see any stored value; value ops see it only when of the compared type
    (a stored value of the wrong type counts as missing for them)."""
    return stored if cmp.op in PRESENCE else typed(stored, cmp.type)


def trait_value(node: TraitCondition, facts: CustomerFacts) -> Any:
    key = node.custom_key
    if key is not None:
        return _as_compared(facts.traits.get(key), node.cmp)
    return _as_compared(facts.builtin.get(node.field), node.cmp)


def _in_window(t: datetime, window: Window | None, now: datetime) -> bool:
    if t >= now:
        return False
    if window is None:
        return True
    start, end = window.bounds(now)
    return (start is None or t >= start) and t < end


def _filter_value(f: PropertyFilter, properties: dict) -> Any:
    raw = properties.get(f.property)
    return raw if f.cmp.type == "any" else _as_compared(raw, f.cmp)


def matches_filters(filters, properties: dict, now: datetime) -> bool:
    return all(compare(f.cmp, _filter_value(f, properties), now) for f in filters)


def at_time(when: When | None, event: EventFact, facts: CustomerFacts) -> bool:
    """Whether the event falls in `when` on the customer's local clock."""
    if when is None:
        return True
    local = local_time(event.timestamp, facts.builtin.get("timezone"))
    return (when.days is None or local.isoweekday() in when.days) and \
        (when.hours is None or when.hours[0] <= local.hour < when.hours[1])


def matching_events(event: str, where, window: Window | None, facts: CustomerFacts, now: datetime,
                    when: When | None = None) -> list[EventFact]:
    return [e for e in facts.events if (event == ANY_EVENT or e.name == event) and _in_window(e.timestamp, window, now)
            and matches_filters(where, e.properties, now) and at_time(when, e, facts)]


def event_value(node: EventCondition, facts: CustomerFacts, now: datetime) -> Any:
    """The condition's measure for one customer. A share is the part of the events (name,
    `where`, `window`) that `when` keeps, exact (a Fraction); missing without events."""
    if node.measure.kind == "share":
        every = matching_events(node.event, node.where, node.window, facts, now)
        kept = sum(1 for e in every if at_time(node.when, e, facts))
        return Fraction(kept, len(every)) if every else None
    return measure_value(node.measure, matching_events(node.event, node.where, node.window, facts, now, node.when))


def measure_value(measure: Measure, events: list[EventFact]) -> Any:
    """The measure over the matching events (None = missing)."""
    if measure.kind == "count":
        return Decimal(len(events))
    if measure.kind == "distinct_days":
        return Decimal(len({e.timestamp.astimezone(timezone.utc).date() for e in events}))
    if measure.kind == "first_occurred":
        return min((e.timestamp for e in events), default=None)
    if measure.kind == "last_occurred":
        return max((e.timestamp for e in events), default=None)
    values = [_decimal(e.properties[measure.property]) for e in events
              if json_type(e.properties.get(measure.property)) == "number"]
    if measure.fn == "sum":
        return sum(values, Decimal(0))
    if not values:
        return None
    if measure.fn == "avg":
        return sum(values, Decimal(0)) / len(values)
    return min(values) if measure.fn == "min" else max(values)


def sequence_candidates(node: SequenceCondition, facts: CustomerFacts, now: datetime) -> list[EventFact]:
    """The customer's events a sequence may use (inside its window, before `now`), in time order."""
    return sorted((e for e in facts.events if _in_window(e.timestamp, node.window, now)), key=lambda e: e.timestamp)


def fits_step(step: Step, event: EventFact, now: datetime) -> bool:
    return event.name == step.event and matches_filters(step.where, event.properties, now)


def sequence_match(node: SequenceCondition, facts: CustomerFacts, now: datetime) -> list[EventFact] | None:
    """From each event that can start the sequence, take the earliest event for every next
    step (strictly later); the first start that finishes within `within` gives the events
    that did the steps (None: the customer did not do the sequence)."""
    ordered = sequence_candidates(node, facts, now)
    for first in (e for e in ordered if fits_step(node.steps[0], e, now)):
        chain = [first]
        for step in node.steps[1:]:
            following = next((e for e in ordered if e.timestamp > chain[-1].timestamp and fits_step(step, e, now)), None)
            if following is None:
                break
            chain.append(following)
        if len(chain) == len(node.steps) and chain[-1].timestamp - first.timestamp <= node.within:
            return chain
    return None


def sequence_done(node: SequenceCondition, facts: CustomerFacts, now: datetime) -> bool:
    return sequence_match(node, facts, now) is not None


def survey_answers(node: SurveyCondition, facts: CustomerFacts, now: datetime) -> list[SurveyFact]:
    """The responses a survey condition measures: `count` counts every response, `latest`
    and `average` read those that carry a score."""
    return [s for s in facts.surveys if s.survey == node.survey and s.responded_at < now
            and (s.score is not None or node.measure == "count")
            and (node.question is None or s.question == node.question)]


def survey_value(node: SurveyCondition, facts: CustomerFacts, now: datetime) -> Any:
    answers = survey_answers(node, facts, now)
    if node.measure == "count":
        return Decimal(len(answers))
    if not answers:
        return None
    if node.measure == "average":
        return sum((s.score for s in answers), Decimal(0)) / len(answers)
    return max(answers, key=lambda s: (s.responded_at, s.id)).score


def metric_value(node: MetricCondition, facts: CustomerFacts) -> Any:
    if facts.metrics is None:
        return None
    stored = facts.metrics.get(node.metric)
    if node.metric in ("rfm_segment", "cluster") and stored == "":
        return None
    return _as_compared(stored, node.cmp)


def condition_value(node, facts: CustomerFacts, now: datetime) -> tuple[bool, Any]:
    """(truth before `negate`, the fact that decided it) for one condition."""
    if isinstance(node, TraitCondition):
        value = trait_value(node, facts)
        return compare(node.cmp, value, now), value
    if isinstance(node, EventCondition):
        value = event_value(node, facts, now)
        return compare(node.measure.cmp, value, now), value
    if isinstance(node, SequenceCondition):
        done = sequence_done(node, facts, now)
        return done, done
    if isinstance(node, MetricCondition):
        value = metric_value(node, facts)
        return compare(node.cmp, value, now), value
    if isinstance(node, SurveyCondition):
        value = survey_value(node, facts, now)
        return compare(node.cmp, value, now), value
    if isinstance(node, SegmentCondition):
        member = node.segment in facts.segments
        return member == node.inside, member
    if isinstance(node, ConsentCondition):
        granted = facts.consents.get(node.channel) is True
        return granted == node.granted, granted
    raise TypeError(node)


def evaluate(node, facts: CustomerFacts, *, now: datetime) -> bool:
    if isinstance(node, Group):
        results = (evaluate(child, facts, now=now) for child in node.conditions)
        value = all(results) if node.match == "all" else any(results)
    else:
        value = condition_value(node, facts, now)[0]
    return value != node.negate
