"""JSON definition → typed nodes, collecting every problem with its path.

`parse(doc, registry)` returns `(group, warnings)` or raises `RuleError` naming all the
problems at once, so the builder can mark each node that is wrong. The parser is layered
as the compiler is: values.py parses a value, events.py behaviour, this module the rest
and the groups.
"""

from __future__ import annotations

from typing import Any

from common.errors import Code, Problem, SegmentCode
from common.jsonvalues import value_problem
from segments.rules.nodes import (
    ConsentCondition, EventCondition, Group, MetricCondition, Registry, RuleError, SegmentCondition, SurveyCondition,
    TraitCondition, child_path,
)
from segments.rules.parse.events import EventParser
from segments.rules.vocabulary import (
    ANY_EVENT, BUILTIN_TRAITS, CHANNELS, CONDITION_TYPES, EQUALITY, MAX_CONDITIONS, MAX_DEPTH, MEASURE_OPS, METRICS,
    OPS_BY_TYPE, RFM_GROUPS, SETS, SURVEY_MEASURES, TRAIT_OPS_BY_TYPE, VERSION,
)


class RuleParser(EventParser):
    """The whole definition: groups and every kind of condition (values.py and events.py
    parse the parts)."""

    def root(self, doc: Any) -> Group | None:
        """The root group; problems of its keys and of its conditions are all collected."""
        complete = self.keys(doc, "", {"version", "match", "conditions", "negate"}, ("version", "match", "conditions"))
        if not isinstance(doc, dict):
            return None
        if "version" in doc and (doc["version"] != VERSION or isinstance(doc["version"], bool)):
            self.problem("version", Code.INVALID_VALUE, f"Only version {VERSION} exists.")
        group = self.group(doc, "", depth=1)
        return group if complete else None

    def group(self, node: dict, path: str, depth: int) -> Group | None:
        if depth > MAX_DEPTH:
            self.problem(path, Code.TOO_DEEP, f"Groups nest at most {MAX_DEPTH} deep.")
            return None
        match = node.get("match")
        if match not in ("all", "any") and "match" in node:
            self.problem(child_path(path, "match"), Code.INVALID_VALUE, "`match` is “all” or “any”.")
        conditions = node.get("conditions")
        parsed = []
        if "conditions" not in node:
            pass  # reported as required by the caller
        elif not isinstance(conditions, list):
            self.problem(child_path(path, "conditions"), Code.INVALID_TYPE, "`conditions` is a list.")
        elif not conditions:
            self.problem(child_path(path, "conditions"), Code.REQUIRED, "A group needs at least one condition.")
        elif len(conditions) > MAX_CONDITIONS:
            self.problem(child_path(path, "conditions"), Code.TOO_MANY,
                         f"At most {MAX_CONDITIONS} conditions per group.")
        else:
            for index, child in enumerate(conditions):
                parsed.append(self.node(child, child_path(child_path(path, "conditions"), index), depth))
        negate = self.negate(node, path)
        if not parsed or any(child is None for child in parsed) or match not in ("all", "any"):
            return None
        return Group(match=match, conditions=tuple(parsed), negate=negate)

    def node(self, node: Any, path: str, depth: int):
        if not isinstance(node, dict):
            self.problem(path, Code.INVALID_TYPE, "Expected a group or a condition (an object).")
            return None
        if "type" not in node:  # a group
            if not self.keys(node, path, {"match", "conditions", "negate"}, ("match", "conditions")):
                return None
            return self.group(node, path, depth + 1)
        kind = node["type"]
        if kind not in CONDITION_TYPES:
            self.problem(child_path(path, "type"), Code.INVALID_VALUE,
                         f"Condition types: {', '.join(CONDITION_TYPES)}.")
            return None
        return getattr(self, f"cond_{kind}")(node, path)

    def cond_trait(self, node: dict, path: str):
        if not self.keys(node, path, {"type", "field", "op", "value", "negate"}, ("field", "op")):
            return None
        field = node["field"]
        type_ = None
        if isinstance(field, str) and field.startswith("traits."):
            type_ = self.registry.traits.get(field[len("traits."):])
        elif isinstance(field, str) and field in BUILTIN_TRAITS:
            type_ = BUILTIN_TRAITS[field].type.value
        if type_ is None:
            self.problem(child_path(path, "field"), SegmentCode.UNKNOWN_TRAIT,
                         f"“{field}” is neither a built-in trait nor a registered custom trait (traits.<key>).")
            return None
        item = "string" if field == "tech_stack" else None
        cmp = self.comparison(node, path, type_, TRAIT_OPS_BY_TYPE[type_], f"a {type_} trait", list_item=item)
        negate = self.negate(node, path)
        return None if cmp is None else TraitCondition(field=field, cmp=cmp, negate=negate)

    def cond_metric(self, node: dict, path: str):
        if not self.keys(node, path, {"type", "metric", "op", "value", "negate"}, ("metric", "op")):
            return None
        metric = node["metric"]
        if not isinstance(metric, str) or metric not in METRICS:
            self.problem(child_path(path, "metric"), Code.INVALID_VALUE, f"Metrics: {', '.join(METRICS)}.")
            return None
        type_ = METRICS[metric]
        cmp = self.comparison(node, path, type_, OPS_BY_TYPE[type_], f"the {type_} metric {metric}")
        if cmp is not None and metric == "rfm_segment" and cmp.op in EQUALITY | SETS:
            names = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
            unknown = [n for n in names if n not in RFM_GROUPS]
            if unknown:
                self.problem(child_path(path, "value"), Code.INVALID_VALUE,
                             f"“{unknown[0]}” is not an RFM group; use one of {', '.join(RFM_GROUPS)}.")
                return None
        negate = self.negate(node, path)
        return None if cmp is None else MetricCondition(metric=metric, cmp=cmp, negate=negate)

    def cond_survey(self, node: dict, path: str):
        allowed = {"type", "survey", "measure", "question", "op", "value", "negate"}
        if not self.keys(node, path, allowed, ("survey", "measure", "op")):
            return None
        survey, measure, question = node["survey"], node["measure"], node.get("question")
        ok = True
        if not isinstance(survey, str) or survey not in self.registry.surveys:
            self.problem(child_path(path, "survey"), Code.UNKNOWN_SURVEY, f"No survey “{survey}” in this workspace.")
            ok = False
        if measure not in SURVEY_MEASURES:
            self.problem(child_path(path, "measure"), Code.INVALID_VALUE,
                         f"`measure` is one of {', '.join(SURVEY_MEASURES)}.")
            ok = False
        if question is not None and (not isinstance(question, str) or not question):
            self.problem(child_path(path, "question"), Code.INVALID_TYPE, "`question` is a question key.")
            ok = False
        cmp = self.comparison(node, path, "number", MEASURE_OPS, f"a survey {measure}")
        negate = self.negate(node, path)
        if not ok or cmp is None:
            return None
        return SurveyCondition(survey=survey, measure=measure, cmp=cmp, question=question, negate=negate)

    def cond_segment(self, node: dict, path: str):
        if not self.keys(node, path, {"type", "segment", "op", "negate"}, ("segment", "op")):
            return None
        key, op = node["segment"], node["op"]
        negate = self.negate(node, path)
        if op not in ("in", "not_in"):
            self.problem(child_path(path, "op"), SegmentCode.INVALID_OP,
                         "A segment condition's `op` is “in” or “not_in”.")
            return None
        if not isinstance(key, str) or (key not in self.registry.segments and key != self.registry.self_key):
            self.problem(child_path(path, "segment"), Code.UNKNOWN_SEGMENT, f"No segment “{key}”.")
            return None
        cycle = self.cycle_through(key)
        if cycle:
            self.problem(child_path(path, "segment"), SegmentCode.CYCLE,
                         "Segments would reference each other: " + " → ".join(cycle) + ".")
            return None
        return SegmentCondition(segment=key, inside=op == "in", negate=negate)

    def cycle_through(self, key: str) -> list[str] | None:
        """The reference path from the segment being defined through `key` back to it, if any."""
        me = self.registry.self_key
        if me is None:
            return None
        stack, seen = [(key, [me, key])], set()
        while stack:
            current, trail = stack.pop()
            if current == me:
                return trail
            if current in seen:
                continue
            seen.add(current)
            for nxt in sorted(self.registry.segments.get(current, ())):
                stack.append((nxt, trail + [nxt]))
        return None

    def cond_consent(self, node: dict, path: str):
        if not self.keys(node, path, {"type", "channel", "granted", "negate"}, ("channel", "granted")):
            return None
        channel, granted = node["channel"], node["granted"]
        ok = True
        if channel not in CHANNELS:
            self.problem(child_path(path, "channel"), Code.INVALID_VALUE, f"Channels: {', '.join(CHANNELS)}.")
            ok = False
        if not isinstance(granted, bool):
            self.problem(child_path(path, "granted"), Code.INVALID_TYPE, "`granted` is true or false.")
            ok = False
        negate = self.negate(node, path)
        return ConsentCondition(channel=channel, granted=granted, negate=negate) if ok else None


def parse(doc: Any, registry: Registry | None = None) -> tuple[Group, list[Problem]]:
    hostile = value_problem(doc)  # text PostgreSQL cannot hold, NaN, absurd nesting
    if hostile:
        raise RuleError([hostile])
    parser = RuleParser(registry or Registry())
    group = parser.root(doc)
    if parser.problems or group is None:
        raise RuleError(parser.problems or [Problem("", Code.INVALID_VALUE, "Not a definition.")])
    return group, parser.warnings


def references(group: Group) -> set[str]:
    """Keys of the segments a definition refers to."""
    return {node.segment for node in group.walk() if isinstance(node, SegmentCondition)}


def aggregated_properties(group: Group) -> set[tuple[str, str]]:
    """The (event, numeric property) pairs a definition aggregates (sum, avg, min, max)."""
    return {(node.event, node.measure.property) for node in group.walk()
            if isinstance(node, EventCondition) and node.measure.kind == "aggregate" and node.event != ANY_EVENT}
