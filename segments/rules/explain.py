"""Why is this customer in (or out of) a segment: the definition tree with every node's
truth for one customer and the facts that decided it.

Built on `reference`: each condition's truth is `reference.condition_value`, so the tree
can never disagree with the evaluator (the root's `result` is `reference.evaluate`). The
output is plain JSON (numbers, ISO 8601 strings in UTC, lists, dicts) for the profile
page's green/red view and `GET /api/v1/segments/{key}/explain/{customer_id}/`.

Explain returns data, not a view of it: trait values come back unmasked, each marked with
`pii` so the caller (which knows the actor's permissions) can mask them. Built-in PII is
`BUILTIN_TRAITS[...].is_pii`; custom traits are PII when the caller names them in
`pii_traits` (the registry's keys, e.g. `customers.selectors.pii_trait_keys()`).

`describe(node)` is the one-line summary of a node, shared with the builder.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from segments.rules import reference
from segments.rules.nodes import (
    Comparison, ConsentCondition, EventCondition, Group, Measure, MetricCondition, Moment, PropertyFilter,
    SegmentCondition, SequenceCondition, SurveyCondition, TraitCondition, When, Window, child_path,
)
from segments.rules.reference import CustomerFacts, EventFact
from segments.rules.vocabulary import ANY_EVENT, BUILTIN_TRAITS
from segments.rules.zones import known_zones

SAMPLES = 5  # matching events / answers shown per condition
_LISTED = 10  # values of an `in` list spelled out in a summary
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

KINDS = {TraitCondition: "trait", EventCondition: "event", SequenceCondition: "sequence", MetricCondition: "metric",
         SurveyCondition: "survey", SegmentCondition: "segment", ConsentCondition: "consent"}


def explain(group: Group, facts: CustomerFacts, *, now: datetime, pii_traits: Collection[str] = frozenset(),
            pii_properties: Collection[str] = frozenset(), shown: Group | None = None) -> dict:
    """The tree for one customer at `now`. Every node has `path` (the parser's path syntax),
    `kind`, `negate`, `summary`, `raw_result` (before negate) and `result` (after); groups
    add `match` and `conditions`, conditions add `fact` (what decided them). `shown`: the
    same rule as its reader may see it (personal.mask_group), which the summaries describe."""
    personal = frozenset(pii_traits) | frozenset(f"property:{key.lower()}" for key in pii_properties)
    return _node(group, shown or group, facts, now, "", personal)


def _node(node, shown, facts: CustomerFacts, now: datetime, path: str, pii: frozenset[str]) -> dict:
    if isinstance(node, Group):
        children = [_node(child, shown_child, facts, now, child_path(child_path(path, "conditions"), index), pii)
                    for index, (child, shown_child) in enumerate(zip(node.conditions, shown.conditions))]
        results = [child["result"] for child in children]
        raw = all(results) if node.match == "all" else any(results)
        return {"path": path, "kind": "group", "match": node.match, "negate": node.negate, "summary": describe(shown),
                "raw_result": raw, "result": raw != node.negate, "conditions": children}
    raw, value = reference.condition_value(node, facts, now)
    return {"path": path, "kind": KINDS[type(node)], "negate": node.negate, "summary": describe(shown),
            "raw_result": raw, "result": raw != node.negate, "fact": _fact(node, value, facts, now, pii)}


# ------------------------------------------------------------------------ facts


def _fact(node, value: Any, facts: CustomerFacts, now: datetime, pii: frozenset[str]) -> dict:
    """What decided the condition. `value` is what `reference.condition_value` compared
    (None = missing); the helpers below only add context around it."""
    if isinstance(node, TraitCondition):
        key = node.custom_key
        stored = facts.traits.get(key) if key is not None else facts.builtin.get(node.field)
        builtin = BUILTIN_TRAITS.get(node.field)
        return {"field": node.field, "custom": key is not None, "value": jsonable(stored), "missing": value is None,
                "pii": bool(builtin and builtin.is_pii) or (key if key is not None else node.field) in pii}
    if isinstance(node, EventCondition):
        share = node.measure.kind == "share"
        # A share's samples are the events `when` keeps; its `of_events` the whole it is a part of.
        every = reference.matching_events(node.event, node.where, node.window, facts, now)
        events = [e for e in every if reference.at_time(node.when, e, facts)]
        fact = {"event": node.event, "measure": node.measure.kind, "value": jsonable(value),
                "matching_events": len(events), "window": _bounds(node.window, now)}
        if share:
            fact["of_events"] = len(every)
        if node.when is not None:
            fact["timezone"] = _zone_used(facts)
        if node.measure.kind == "aggregate":
            # An aggregate of a personal property (and its samples) is personal data too.
            fact.update(fn=node.measure.fn, property=node.measure.property,
                        pii=f"property:{node.measure.property.lower()}" in pii)
        # TRICKY: the first occurrence is decided by the earliest event, everything else
        # reads best newest first.
        ordered = sorted(events, key=lambda e: (e.timestamp, e.id), reverse=node.measure.kind != "first_occurred")
        fact["samples"] = [_sample(e, node.measure) for e in ordered[:SAMPLES]]
        return fact
    if isinstance(node, SequenceCondition):
        chain = reference.sequence_match(node, facts, now) or []
        candidates = reference.sequence_candidates(node, facts, now)
        return {"completed": value, "window": _bounds(node.window, now),
                "events": [{"step": i, "event": e.name, "id": e.id, "timestamp": jsonable(e.timestamp)}
                           for i, e in enumerate(chain)],
                "steps": [{"event": step.event,
                           "matching_events": sum(1 for e in candidates if reference.fits_step(step, e, now))}
                          for step in node.steps]}
    if isinstance(node, MetricCondition):
        stored = facts.metrics.get(node.metric) if facts.metrics is not None else None
        return {"metric": node.metric, "value": jsonable(stored), "missing": value is None,
                "scored": facts.metrics is not None}
    if isinstance(node, SurveyCondition):
        answers = sorted(reference.survey_answers(node, facts, now), key=lambda s: (s.responded_at, s.id), reverse=True)
        return {"survey": node.survey, "measure": node.measure, "question": node.question, "value": jsonable(value),
                "responses": len(answers),
                "samples": [{"id": s.id, "responded_at": jsonable(s.responded_at), "score": jsonable(s.score),
                             "question": s.question} for s in answers[:SAMPLES]]}
    if isinstance(node, SegmentCondition):
        return {"segment": node.segment, "member": value}
    if isinstance(node, ConsentCondition):
        recorded = facts.consents.get(node.channel)
        return {"channel": node.channel, "granted": value,
                "recorded": None if recorded is None else "granted" if recorded is True else "withdrawn"}
    raise TypeError(node)


def _zone_used(facts: CustomerFacts) -> str:
    """The zone whose clock `when` read for this customer."""
    name = facts.builtin.get("timezone")
    return name if isinstance(name, str) and name in known_zones() else "UTC"


def _sample(event: EventFact, measure: Measure) -> dict:
    sample = {"id": event.id, "timestamp": jsonable(event.timestamp)}
    if measure.kind == "aggregate":
        sample["property_value"] = jsonable(event.properties.get(measure.property))
    return sample


def _bounds(window: Window | None, now: datetime) -> dict:
    """The half-open span events were counted in, clipped to `now` (from None: all time)."""
    start, end = window.bounds(now) if window is not None else (None, now)
    return {"from": jsonable(start), "to": jsonable(min(end, now))}


def jsonable(value: Any) -> Any:
    """A stored or computed value as plain JSON: exact integers stay integers, other
    Decimals become floats, times become ISO 8601 in UTC."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Fraction):  # a share
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    return value


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------ summaries


def describe(node) -> str:
    """One line a person can read: "country is one of US, CA", "login at least 3 times in
    the last 30 days", "did login → purchase within 1 day"; negation included."""
    if isinstance(node, Group):
        if node.negate:
            return "none of the following" if node.match == "any" else "not all of the following"
        return f"{node.match} of the following"
    text = _describe_condition(node)
    return f"not ({text})" if node.negate else text


def _describe_condition(node) -> str:
    if isinstance(node, TraitCondition):
        return f"{node.field} {_phrase(node.cmp)}"
    if isinstance(node, EventCondition):
        return _describe_event(node)
    if isinstance(node, SequenceCondition):
        steps = " → ".join(step.event + _where(step.where) for step in node.steps)
        return f"did {steps} within {_duration(node.within)}{_window(node.window)}"
    if isinstance(node, MetricCondition):
        return f"{node.metric} {_phrase(node.cmp)}"
    if isinstance(node, SurveyCondition):
        question = f" for question {node.question}" if node.question is not None else ""
        subject = {"latest": f"latest {node.survey} score", "average": f"average {node.survey} score",
                   "count": f"number of {node.survey} answers"}[node.measure]
        return f"{subject}{question} {_phrase(node.cmp)}"
    if isinstance(node, SegmentCondition):
        return f"{'in' if node.inside else 'not in'} segment {node.segment}"
    if isinstance(node, ConsentCondition):
        return f"{node.channel} consent {'granted' if node.granted else 'not granted'}"
    raise TypeError(node)


def _describe_event(node: EventCondition) -> str:
    measure, cmp = node.measure, node.measure.cmp
    name = "any event" if node.event == ANY_EVENT else node.event
    subject = name + _where(node.where)
    window = _window(node.window)
    if measure.kind == "share":
        return f"share of {subject}{window} {_at(node.when)} {_phrase(cmp)}"
    subject += f" {_at(node.when)}" if node.when is not None else ""
    if measure.kind == "count":
        if cmp.op == "eq" and cmp.value == 0:
            return f"did not {subject}{window}"
        return f"{subject} {_quantity(cmp, 'time')}{window}"
    if measure.kind == "distinct_days":
        return f"{subject} on {_quantity(cmp, 'distinct day')}{window}"
    if measure.kind == "aggregate":
        fn = {"sum": "total", "avg": "average", "min": "minimum", "max": "maximum"}[measure.fn]
        return f"{fn} {measure.property} of {subject} {_phrase(cmp)}{window}"
    when = _phrase(cmp).removeprefix("is ")
    return f"{'first' if measure.kind == 'first_occurred' else 'last'} {subject} {when}{window}"


def _at(when: When) -> str:
    """"on Saturday or Sunday", "from 18:00 to 24:00 on Friday" (the customer's local time)."""
    parts = []
    if when.hours is not None:
        parts.append(f"from {when.hours[0]:02d}:00 to {when.hours[1]:02d}:00")
    if when.days is not None:
        days = [_WEEKDAYS[d - 1] for d in sorted(when.days)]
        parts.append("on " + (", ".join(days[:-1]) + " or " + days[-1] if len(days) > 1 else days[0]))
    return " ".join(parts) + " local time"


def _quantity(cmp: Comparison, unit: str) -> str:
    """"at least 3 times", "exactly once", "between 1 and 3 distinct days"."""
    def n(value) -> str:
        if unit == "time" and value == 1:
            return "once"
        return f"{_value(value)} {unit}" + ("" if value == 1 else "s")

    op, value = cmp.op, cmp.value
    plural = unit + "s"
    if op in ("in", "not_in"):
        return ("" if op == "in" else "not ") + f"{_values(value, last='or')} {plural}"
    if op == "between":
        return f"between {_value(value[0])} and {_value(value[1])} {plural}"
    return {"eq": "exactly ", "neq": "not exactly ", "gt": "more than ", "gte": "at least ", "lt": "fewer than ",
            "lte": "at most "}[op] + n(value)


def _phrase(cmp: Comparison) -> str:
    """The comparison after the subject: "is one of US, CA", "is within the last 30 days"."""
    op, value = cmp.op, cmp.value
    when = cmp.type == "datetime" or isinstance(value, Moment) or (
        isinstance(value, tuple) and value and isinstance(value[0], Moment))
    if op == "is_set":
        return "is set"
    if op == "is_not_set":
        return "is not set"
    if op == "eq":
        return f"is on {_value(value)}" if isinstance(value, Moment) and value.is_date else f"is {_value(value)}"
    if op == "neq":
        return f"is not on {_value(value)}" if isinstance(value, Moment) and value.is_date else f"is not {_value(value)}"
    if op == "in":
        return f"is one of {_values(value)}"
    if op == "not_in":
        return f"is none of {_values(value)}"
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        verb = {"contains": "contains", "not_contains": "does not contain", "starts_with": "starts with",
                "ends_with": "ends with"}[op]
        return f"{verb} {_quote(value)}"
    if op == "between":
        return f"is between {_value(value[0])} and {_value(value[1])}"
    if op == "anniversary_within":
        return f"has an anniversary within the next {_value(value)}"
    if op == "within_last":
        return f"is within the last {_duration(value)}"
    if op == "more_than_ago":
        return f"is more than {_duration(value)} ago"
    if op in ("before", "after"):
        return f"is {op} {_value(value)}"
    if op in ("has_any", "has_all", "has_none"):
        return f"has {op[4:]} of {_values(value)}"
    if when:
        return {"gt": "is after ", "gte": "is on or after ", "lt": "is before ", "lte": "is on or before "}[op] \
            + _value(value)
    return {"gt": "is greater than ", "gte": "is at least ", "lt": "is less than ", "lte": "is at most "}[op] \
        + _value(value)


def _where(filters: tuple[PropertyFilter, ...]) -> str:
    if not filters:
        return ""
    return " (" + " and ".join(f"{f.property} {_phrase(f.cmp)}" for f in filters) + ")"


def _window(window: Window | None) -> str:
    if window is None:
        return ""
    if window.last is not None:
        return f" in the last {_duration(window.last)}"
    parts = []
    if window.start is not None:
        parts.append(("from " if window.end is not None else "since ") + _instant(window.start))
    if window.end is not None:
        # A midnight end is exclusive, so it takes in the whole day before: say that day.
        if _is_midnight(window.end):
            parts.append("through " + (window.end - timedelta(days=1)).date().isoformat())
        else:
            parts.append("before " + _iso(window.end))
    return " " + " ".join(parts)


def _is_midnight(value: datetime) -> bool:
    return value.astimezone(timezone.utc).time() == datetime.min.time()


def _instant(value: datetime) -> str:
    return value.astimezone(timezone.utc).date().isoformat() if _is_midnight(value) else _iso(value)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"


def _value(value: Any) -> str:
    if isinstance(value, Moment):
        return value.value.date().isoformat() if value.is_date else _iso(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, timedelta):
        return _duration(value)
    if value == "":
        return '""'
    return str(value)


def _values(values, last: str | None = None) -> str:
    shown = [_value(v) for v in values[:_LISTED]]
    if len(values) > _LISTED:
        return ", ".join(shown) + f" and {len(values) - _LISTED} more"
    if last and len(shown) > 1:
        return ", ".join(shown[:-1]) + f" {last} " + shown[-1]
    return ", ".join(shown)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'
