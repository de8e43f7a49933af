"""Which SQL shape a condition compiles to, decided from the rule alone: whether a count or
sum that 0 passes must take in customers without rows (an anti-join, not a semi-join),
whether a condition's rows alone are its members (it can drive the statement), and the
lone condition under a root of nested groups. The compiler asks; nothing here writes SQL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from segments.rules.nodes import (
    Comparison, ConsentCondition, EventCondition, Group, MetricCondition, SurveyCondition,
)
from segments.rules.vocabulary import ANY_EVENT


def event_shape(node: EventCondition, now: datetime) -> str:
    """How an event condition compiles: "exists" / "not_exists" (a count that asks only
    "did it" / "never"), "in" (the customers whose events pass, grouped) or "not_in" (a
    customer without events passes: the complement of those whose events fail)."""
    m = node.measure
    zero = Decimal(0) if m.kind in ("count", "distinct_days") or m.fn == "sum" else None
    zero_passes = zero is not None and _number_holds(m.cmp, zero)
    if m.kind in ("count", "distinct_days") and _same_for_every_positive_count(m.cmp, now, holds=not zero_passes):
        return "not_exists" if zero_passes else "exists"
    return "not_in" if zero_passes else "in"


def survey_complemented(node: SurveyCondition, now: datetime) -> bool:
    """A count of answers that 0 passes: customers without answers match too."""
    return node.measure == "count" and _number_holds(node.cmp, Decimal(0))


def drives(node, now: datetime) -> bool:
    """Whether a condition, not negated, is a semi-join whose rows alone are its members,
    each customer once: a metric (one CustomerMetrics row per customer), a granted consent,
    a grouped event measure or survey answer that a customer without rows fails. Segment
    references and sequences are not: their rows may repeat a customer."""
    if isinstance(node, MetricCondition):
        return node.cmp.op != "is_not_set"
    if isinstance(node, ConsentCondition):
        return node.granted
    if isinstance(node, SurveyCondition):
        return not survey_complemented(node, now)
    if isinstance(node, EventCondition):
        return event_shape(node, now) == "in"
    return False


def lone_condition(group: Group):
    """The root's only condition and whether it ends up negated, through groups of one
    child (`all` or `any` of one is that child); None when the root combines several."""
    node, negated = group, False
    while isinstance(node, Group):
        negated = negated != node.negate
        if len(node.conditions) != 1:
            return None
        node = node.conditions[0]
    return node, negated != node.negate


def _same_for_every_positive_count(cmp: Comparison, now: datetime, *, holds: bool) -> bool:
    """Whether `cmp` on a count is `holds` for every count 1, 2, 3 …: gte/gt are monotone
    rising, so true at 1 is true for all; lt/lte falling, so false at 1 is false for all;
    eq is false for all when it is true at 0 (the caller knows whether 0 passes)."""
    one = _number_holds(cmp, Decimal(1))
    if holds:
        return cmp.op in ("gte", "gt") and one
    if cmp.op == "eq":
        return _number_holds(cmp, Decimal(0))
    return cmp.op in ("lt", "lte") and not one


def _number_holds(cmp: Comparison, n: Decimal) -> bool:
    """Whether a measure's numeric comparison holds for the constant `n`. The compiler
    decides a statement's shape with it; it does not ask the reference evaluator, so that
    the evaluator stays an independent check of the compiled SQL."""
    op, value = cmp.op, cmp.value
    if op == "between":
        return value[0] <= n <= value[1]
    if op in ("in", "not_in"):
        return (n in value) == (op == "in")
    if op in ("eq", "neq"):
        return (n == value) == (op == "eq")
    return {"gt": n > value, "gte": n >= value, "lt": n < value, "lte": n <= value}[op]


def counted_events(group: Group, now: datetime) -> set[str]:
    """The event names a definition measures by count, distinct days or first/last time in
    a grouped condition (not an EXISTS test), without property filters or time of week:
    what day rollups could answer."""
    return {node.event for node in group.walk()
            if isinstance(node, EventCondition) and node.event != ANY_EVENT and not node.where and node.when is None
            and node.measure.kind in ("count", "distinct_days", "first_occurred", "last_occurred")
            and event_shape(node, now) in ("in", "not_in")}


def lifetime_answers(node: EventCondition, now: datetime) -> bool:
    """Whether per-customer lifetime rows (count, first, last) can answer the condition:
    a count (any shape) or first/last time of one named event without property filters,
    time of week or a window start — everything before the window's end."""
    return (node.event != ANY_EVENT and not node.where and node.when is None
            and node.measure.kind in ("count", "first_occurred", "last_occurred")
            and (node.window is None or node.window.bounds(now)[0] is None))


def lifetime_events(group: Group, now: datetime) -> set[str]:
    """The event names whose lifetime rows could answer some condition of the definition."""
    return {node.event for node in group.walk() if isinstance(node, EventCondition) and lifetime_answers(node, now)}


def rolled_up_events(group: Group, now: datetime) -> set[str]:
    """The event names a saved definition asks rollups of (day rows and lifetimes)."""
    return counted_events(group, now) | lifetime_events(group, now)
