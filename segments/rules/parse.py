"""JSON definition → typed nodes, collecting every problem with its path.

`parse(doc, registry)` returns `(group, warnings)` or raises `RuleError` naming all the
problems at once, so the builder can mark each node that is wrong.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from common.errors import Code, Problem, SegmentCode
from common.jsonvalues import value_problem
from segments.rules.nodes import (
    Comparison, ConsentCondition, EventCondition, Group, Measure, MetricCondition, Moment, PropertyFilter, Registry,
    RuleError, SegmentCondition, SequenceCondition, Step, SurveyCondition, TraitCondition, When, Window, child_path, number,
)
from segments.rules.vocabulary import (
    AGGREGATES, ALL_OPS, ANNIVERSARY, ANY_EVENT, BUILTIN_TRAITS, CHANNELS, CONDITION_TYPES, EQUALITY, FILTER_OPS,
    HOURS, ISO_DAYS, LISTS, MAX_ANNIVERSARY_DAYS, MAX_CONDITIONS, MAX_DEPTH, MAX_DURATION, MAX_LIST, MAX_STEPS,
    MEASURES, MEASURE_OPS, METRICS, MIN_STEPS, MOMENT_RANGE, OCCURRED, OPS_BY_TYPE, ORDER, PRESENCE, RANGE,
    RELATIVE, RFM_GROUPS, SETS, SURVEY_MEASURES, TEXT, TRAIT_OPS_BY_TYPE, VERSION, in_range, is_number, json_type,
    parse_datetime,
)

_DURATION = re.compile(r"^([1-9][0-9]{0,6})([mhdw])$")
_WHOLE_DAYS = re.compile(r"^([1-9][0-9]{0,6})([dw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class _Parser:
    def __init__(self, registry: Registry):
        self.registry = registry
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path=path, code=code, message=message))

    # ------------------------------------------------------------------ structure

    def keys(self, node: Any, path: str, allowed: set[str], required: tuple[str, ...]) -> bool:
        """Is `node` an object with every required key and no unknown one?"""
        if not isinstance(node, dict):
            self.problem(path, Code.INVALID_TYPE, "Expected an object.")
            return False
        for key in sorted(set(node) - allowed, key=str):
            self.problem(child_path(path, str(key)), Code.UNKNOWN_FIELD, f"“{key}” is not a field here.")
        for key in required:
            if key not in node:
                self.problem(child_path(path, key), Code.REQUIRED, f"“{key}” is required.")
        return all(key in node for key in required)

    def negate(self, node: dict, path: str) -> bool:
        value = node.get("negate", False)
        if not isinstance(value, bool):
            self.problem(child_path(path, "negate"), Code.INVALID_TYPE, "`negate` is true or false.")
            return False
        return value

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

    # ------------------------------------------------------------------ values

    def op(self, node: dict, path: str, allowed: set[str], what: str) -> str | None:
        op = node.get("op")
        if op is None:
            self.problem(child_path(path, "op"), Code.REQUIRED, "`op` is required.")
            return None
        if not isinstance(op, str) or op not in allowed:
            known = op in ALL_OPS if isinstance(op, str) else False
            detail = f"“{op}” does not apply to {what}" if known else f"“{op}” is not an operator"
            self.problem(child_path(path, "op"), SegmentCode.INVALID_OP,
                         f"{detail}; use one of {', '.join(sorted(allowed))}.")
            return None
        return op

    def duration(self, raw: Any, path: str) -> timedelta | None:
        match = _DURATION.match(raw) if isinstance(raw, str) else None
        if not match:
            self.problem(path, SegmentCode.INVALID_DURATION, "A duration is <n><unit>, unit m, h, d or w: “30d”.")
            return None
        value = timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})
        if value > MAX_DURATION:
            self.problem(path, SegmentCode.INVALID_DURATION, "Durations are at most 3650 days.")
            return None
        return value

    def anniversary_days(self, raw: Any, path: str) -> timedelta | None:
        """`anniversary_within`'s span: whole days or weeks, 1d..366d."""
        match = _WHOLE_DAYS.match(raw) if isinstance(raw, str) else None
        if not match:
            self.problem(path, SegmentCode.INVALID_DURATION, "An anniversary span is whole days or weeks: “7d”, “2w”.")
            return None
        value = timedelta(days=int(match.group(1)) * (7 if match.group(2) == "w" else 1))
        if value > timedelta(days=MAX_ANNIVERSARY_DAYS):
            self.problem(path, SegmentCode.INVALID_DURATION, f"An anniversary span is at most {MAX_ANNIVERSARY_DAYS} days.")
            return None
        return value

    def moment(self, raw: Any, path: str) -> Moment | None:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
        if parsed is None:
            self.problem(path, Code.INVALID_VALUE, "Use an ISO 8601 date (2024-01-31) or datetime.")
            return None
        if not in_range(parsed):
            self.problem(path, Code.OUT_OF_RANGE, f"Dates must be {MOMENT_RANGE}.")
            return None
        return Moment(parsed, is_date=len(raw.strip()) == 10)

    def scalar(self, type_: str, raw: Any, path: str):
        """One value of `type_` (string, number, boolean, datetime), normalised; None on error."""
        if type_ == "datetime":
            return self.moment(raw, path)
        if type_ == "number":
            if not is_number(raw):
                self.problem(path, Code.INVALID_TYPE, "Expected a number.")
                return None
            return number(raw)
        if type_ == "boolean":
            if not isinstance(raw, bool):
                self.problem(path, Code.INVALID_TYPE, "Expected true or false.")
                return None
            return raw
        if not isinstance(raw, str):
            self.problem(path, Code.INVALID_TYPE, "Expected a string.")
            return None
        return raw

    def values(self, type_: str, raw: Any, path: str, *, exact: int | None = None):
        if not isinstance(raw, list):
            self.problem(path, Code.INVALID_TYPE, "Expected a list.")
            return None
        if exact is not None and len(raw) != exact:
            self.problem(path, Code.INVALID_VALUE, f"Expected exactly {exact} values.")
            return None
        if not raw:
            self.problem(path, Code.INVALID_VALUE, "The list needs at least one value.")
            return None
        if len(raw) > MAX_LIST:
            self.problem(path, Code.TOO_MANY, f"At most {MAX_LIST} values.")
            return None
        items = [self.scalar(type_, item, child_path(path, i)) for i, item in enumerate(raw)]
        return None if any(item is None for item in items) else tuple(items)

    def comparison(self, node: dict, path: str, type_: str, ops: set[str], what: str,
                   list_item: str | None = None) -> Comparison | None:
        """`op` + `value` of a trait, metric, measure or property filter."""
        op = self.op(node, path, ops, what)
        if op is None:
            return None
        vpath = child_path(path, "value")
        if op in PRESENCE:
            if node.get("value") is not None:
                self.problem(vpath, Code.INVALID_VALUE, f"“{op}” takes no value.")
                return None
            return Comparison(op, None, type_)
        if "value" not in node or node["value"] is None:
            self.problem(vpath, Code.REQUIRED, f"“{op}” needs a value.")
            return None
        raw = node["value"]
        if op in RELATIVE:
            value = self.duration(raw, vpath)
        elif op in ANNIVERSARY:
            value = self.anniversary_days(raw, vpath)
        elif op in SETS:
            value = self.values(type_, raw, vpath)
        elif op in RANGE:
            value = self.values(type_, raw, vpath, exact=2)
            if value is not None and _low(value[0]) > _low(value[1]):
                self.problem(vpath, Code.INVALID_RANGE, "`between` needs low ≤ high.")
                return None
        elif op in LISTS:
            value = self.values(list_item, raw, vpath) if list_item else self.list_values(raw, vpath)
        elif op in TEXT:
            value = self.scalar("string", raw, vpath)
        elif op in ("before", "after"):
            value = self.moment(raw, vpath)
        else:
            value = self.scalar(type_, raw, vpath)
        return None if value is None else Comparison(op, value, type_)

    def list_values(self, raw: Any, path: str):
        """Values for has_any/has_all/has_none on a custom list: strings, numbers or booleans."""
        if not isinstance(raw, list) or not raw:
            self.problem(path, "invalid_type" if not isinstance(raw, list) else "invalid_value",
                         "Expected a non-empty list.")
            return None
        if len(raw) > MAX_LIST:
            self.problem(path, Code.TOO_MANY, f"At most {MAX_LIST} values.")
            return None
        for i, item in enumerate(raw):
            if json_type(item) is None:
                self.problem(child_path(path, i), Code.INVALID_TYPE, "List values are strings, numbers or booleans.")
                return None
        return tuple(number(v) if json_type(v) == "number" else v for v in raw)

    # ------------------------------------------------------------------ conditions

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

    def window(self, raw: Any, path: str) -> Window | None:
        if not self.keys(raw, path, {"last", "from", "to"}, ()):
            return None
        if "last" in raw and ({"from", "to"} & set(raw)):
            self.problem(path, Code.INVALID_VALUE, "A window is either {“last”} or {“from”, “to”}.")
            return None
        if "last" in raw:
            last = self.duration(raw["last"], child_path(path, "last"))
            return None if last is None else Window(last=last)
        if not ({"from", "to"} & set(raw)):  # the contract: an empty window {} is invalid_value
            self.problem(path, Code.INVALID_VALUE, "Give “last”, or “from” and/or “to”.")
            return None
        start = self.moment(raw["from"], child_path(path, "from")) if "from" in raw else None
        end = self.moment(raw["to"], child_path(path, "to")) if "to" in raw else None
        if ("from" in raw and start is None) or ("to" in raw and end is None):
            return None
        window = Window(start=start.start if start else None, end=end.end if end else None)
        if window.start and window.end and window.start > window.end:
            self.problem(path, Code.INVALID_RANGE, "“from” is after “to”.")
            return None
        return window

    def where(self, raw: Any, path: str) -> tuple[PropertyFilter, ...] | None:
        if not isinstance(raw, list):
            self.problem(path, Code.INVALID_TYPE, "`where` is a list of property filters.")
            return None
        if len(raw) > MAX_CONDITIONS:
            self.problem(path, Code.TOO_MANY, f"At most {MAX_CONDITIONS} property filters.")
            return None
        filters = []
        for index, item in enumerate(raw):
            fpath = child_path(path, index)
            if not self.keys(item, fpath, {"property", "op", "value"}, ("property", "op")):
                filters.append(None)
                continue
            if not isinstance(item["property"], str) or not item["property"]:
                self.problem(child_path(fpath, "property"), Code.INVALID_TYPE, "Name the event property.")
                filters.append(None)
                continue
            type_ = self.filter_type(item, fpath)
            cmp = None if type_ is None else self.comparison(item, fpath, type_, _filter_ops(type_),
                                                             f"a {type_} property")
            filters.append(None if cmp is None else PropertyFilter(item["property"], cmp))
        return None if any(f is None for f in filters) else tuple(filters)

    def filter_type(self, item: dict, path: str) -> str | None:
        """Event properties have no registry: the operator and value type the filter."""
        op, value = item.get("op"), item.get("value")
        if not isinstance(op, str) or op not in FILTER_OPS:
            self.op(item, path, FILTER_OPS, "an event property")
            return None
        if op in RELATIVE:
            return "datetime"
        if op in TEXT:
            return "string"
        if op in LISTS:
            return "list"
        if op in PRESENCE:
            return "any"
        sample = value[0] if isinstance(value, list) and value else value
        if op in ORDER | RANGE:
            if isinstance(sample, str) and parse_datetime(sample) is not None:
                return "datetime"
            if is_number(sample):
                return "number"
            self.problem(child_path(path, "value"), Code.INVALID_VALUE, "Order operators compare numbers or ISO dates.")
            return None
        kind = json_type(sample)
        if kind is None:
            self.problem(child_path(path, "value"), Code.INVALID_TYPE, "Compare with a string, a number or a boolean.")
            return None
        return kind

    def measure(self, node: dict, path: str) -> Measure | None:
        given = [kind for kind in MEASURES if kind in node]
        if not given:
            self.problem(child_path(path, "count"), Code.REQUIRED, f"Give one measure: {', '.join(MEASURES)}.")
            return None
        if len(given) > 1:
            self.problem(child_path(path, given[1]), Code.INVALID_VALUE, "Give exactly one measure.")
            return None
        kind, mpath = given[0], child_path(path, given[0])
        raw = node[kind]
        if kind in ("first_occurred", "last_occurred"):
            if not self.keys(raw, mpath, {"op", "value"}, ("op",)):
                return None
            op = self.op(raw, mpath, OCCURRED, kind)
            if op is None:
                return None
            if raw.get("value") is None:
                self.problem(child_path(mpath, "value"), Code.REQUIRED, f"“{op}” needs a value.")
                return None
            vpath = child_path(mpath, "value")
            value = self.duration(raw["value"], vpath) if op in RELATIVE else self.moment(raw["value"], vpath)
            return None if value is None else Measure(kind, Comparison(op, value, "datetime"))
        allowed = {"op", "value"} | ({"fn", "property"} if kind == "aggregate" else set())
        required = ("fn", "property", "op") if kind == "aggregate" else ("op",)
        if not self.keys(raw, mpath, allowed, required):
            return None
        fn = prop = None
        if kind == "aggregate":
            fn, prop = raw["fn"], raw["property"]
            if fn not in AGGREGATES:
                self.problem(child_path(mpath, "fn"), Code.INVALID_VALUE, f"`fn` is one of {', '.join(AGGREGATES)}.")
                return None
            if not isinstance(prop, str) or not prop:
                self.problem(child_path(mpath, "property"), Code.INVALID_TYPE, "Name the numeric property.")
                return None
        cmp = self.comparison(raw, mpath, "number", MEASURE_OPS, kind)
        if cmp is not None and kind == "share" and not self.share_values(cmp, child_path(mpath, "value")):
            return None
        return None if cmp is None else Measure(kind, cmp, fn=fn, property=prop)

    def share_values(self, cmp: Comparison, path: str) -> bool:
        """A share is a fraction: every value it is compared with lies in 0..1."""
        values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        for index, value in enumerate(values):
            if not 0 <= value <= 1:
                at = child_path(path, index) if isinstance(cmp.value, tuple) else path
                self.problem(at, Code.INVALID_VALUE, "A share is between 0 and 1 (0.8 = 80%).")
                return False
        return True

    def when(self, raw: Any, path: str) -> When | None:
        """Time of week: `days` (ISO weekdays) and/or `hours` [start, end) on the local clock."""
        if not self.keys(raw, path, {"days", "hours"}, ()):
            return None
        if not ({"days", "hours"} & set(raw)):
            self.problem(path, Code.INVALID_VALUE, "Give “days”, “hours” or both.")
            return None
        days = self.when_days(raw["days"], child_path(path, "days")) if "days" in raw else None
        hours = self.when_hours(raw["hours"], child_path(path, "hours")) if "hours" in raw else None
        if ("days" in raw and days is None) or ("hours" in raw and hours is None):
            return None
        return When(days=days, hours=hours)

    def integers(self, raw: Any, path: str, what: str) -> list[int] | None:
        """A list of JSON integers (6.0 and true are not); problems at the list's path."""
        if not isinstance(raw, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            self.problem(path, Code.INVALID_TYPE, f"{what} is a list of whole numbers.")
            return None
        return raw

    def when_days(self, raw: Any, path: str) -> frozenset[int] | None:
        days = self.integers(raw, path, "`days`")
        if days is None:
            return None
        if not days or any(d not in ISO_DAYS for d in days) or len(set(days)) != len(days):
            self.problem(path, Code.INVALID_VALUE, "`days` lists distinct ISO weekdays, 1 (Monday) to 7 (Sunday).")
            return None
        return frozenset(days)

    def when_hours(self, raw: Any, path: str) -> tuple[int, int] | None:
        hours = self.integers(raw, path, "`hours`")
        if hours is None:
            return None
        if len(hours) != 2 or not HOURS[0] <= hours[0] < hours[1] <= HOURS[1]:
            self.problem(path, Code.INVALID_VALUE, "`hours` is [start, end] with 0 ≤ start < end ≤ 24 (start ≤ hour < end).")
            return None
        return hours[0], hours[1]

    def event_name(self, raw: Any, path: str, *, any_event: bool = False) -> str | None:
        """An event's name; `any_event`: "*" (events of every name) is allowed here."""
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
            self.problem(path, Code.INVALID_TYPE, "Name the event (a non-empty string, ≤ 200 characters).")
            return None
        if raw == ANY_EVENT:
            if not any_event:
                self.problem(path, Code.INVALID_VALUE, "Each step of a sequence names one event (“*” is not allowed).")
                return None
            return raw
        if raw not in self.registry.events:
            self.warnings.append(Problem(path=path, code=SegmentCode.UNKNOWN_EVENT,
                                         message=f"No “{raw}” event has arrived yet; the condition matches once it does."))
        return raw

    def cond_event(self, node: dict, path: str):
        allowed = {"type", "event", "where", "window", "when", "negate", *MEASURES}
        if not self.keys(node, path, allowed, ("event",)):
            return None
        event = self.event_name(node["event"], child_path(path, "event"), any_event=True)
        where = self.where(node["where"], child_path(path, "where")) if "where" in node else ()
        window = self.window(node["window"], child_path(path, "window")) if "window" in node else None
        when = self.when(node["when"], child_path(path, "when")) if "when" in node else None
        measure = self.measure(node, path)
        if "share" in node and "when" not in node:
            self.problem(child_path(path, "when"), Code.REQUIRED,
                         "A share needs `when`: the part of the events at those times.")
            return None
        negate = self.negate(node, path)
        if event is None or where is None or measure is None or ("window" in node and window is None) \
                or ("when" in node and when is None):
            return None
        return EventCondition(event=event, measure=measure, where=where, window=window, negate=negate, when=when)

    def cond_sequence(self, node: dict, path: str):
        if not self.keys(node, path, {"type", "steps", "within", "window", "negate"}, ("steps", "within")):
            return None
        steps_raw, spath = node["steps"], child_path(path, "steps")
        steps = []
        if not isinstance(steps_raw, list):
            self.problem(spath, Code.INVALID_TYPE, "`steps` is a list.")
        elif len(steps_raw) < MIN_STEPS:
            self.problem(spath, Code.INVALID_VALUE, f"A sequence has at least {MIN_STEPS} steps.")
        elif len(steps_raw) > MAX_STEPS:
            self.problem(spath, Code.TOO_MANY, f"A sequence has at most {MAX_STEPS} steps.")
        else:
            for index, step in enumerate(steps_raw):
                stpath = child_path(spath, index)
                if not self.keys(step, stpath, {"event", "where"}, ("event",)):
                    steps.append(None)
                    continue
                name = self.event_name(step["event"], child_path(stpath, "event"))
                where = self.where(step["where"], child_path(stpath, "where")) if "where" in step else ()
                steps.append(None if name is None or where is None else Step(name, where))
        within = self.duration(node["within"], child_path(path, "within"))
        window = self.window(node["window"], child_path(path, "window")) if "window" in node else None
        negate = self.negate(node, path)
        if not steps or any(s is None for s in steps) or within is None or ("window" in node and window is None):
            return None
        return SequenceCondition(steps=tuple(steps), within=within, window=window, negate=negate)

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


def _filter_ops(type_: str) -> set[str]:
    if type_ == "any":
        return PRESENCE
    return OPS_BY_TYPE[type_] | (SETS if type_ in ("string", "number", "boolean") else set())


def _low(value):
    return value.start if isinstance(value, Moment) else value


def parse(doc: Any, registry: Registry | None = None) -> tuple[Group, list[Problem]]:
    hostile = value_problem(doc)  # text PostgreSQL cannot hold, NaN, absurd nesting
    if hostile:
        raise RuleError([hostile])
    parser = _Parser(registry or Registry())
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
