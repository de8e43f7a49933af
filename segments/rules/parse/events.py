"""Behaviour in a definition: event conditions (measure, window, property filters, time of
week) and sequences."""

from __future__ import annotations

from typing import Any

from common.errors import Code, Problem, SegmentCode
from segments.rules.nodes import (
    Comparison, EventCondition, Measure, PropertyFilter, SequenceCondition, Step, When, Window, child_path,
)
from segments.rules.parse.values import ValueParser
from segments.rules.vocabulary import (
    AGGREGATES, ANY_EVENT, FILTER_OPS, HOURS, ISO_DAYS, LISTS, MAX_CONDITIONS, MAX_STEPS, MEASURES, MEASURE_OPS,
    MIN_STEPS, OCCURRED, OPS_BY_TYPE, ORDER, PRESENCE, RANGE, RELATIVE, SETS, TEXT, is_number, json_type,
    parse_datetime,
)


class EventParser(ValueParser):
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


def _filter_ops(type_: str) -> set[str]:
    if type_ == "any":
        return PRESENCE
    return OPS_BY_TYPE[type_] | (SETS if type_ in ("string", "number", "boolean") else set())
