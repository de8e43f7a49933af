"""What every part of a definition is parsed with: the problems and warnings collected so
far, objects' keys, `negate`, operators, durations, moments and comparisons."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from common.errors import Code, Problem, SegmentCode
from segments.rules.nodes import Comparison, Moment, Registry, child_path, number
from segments.rules.vocabulary import (
    ALL_OPS, ANNIVERSARY, LISTS, MAX_ANNIVERSARY_DAYS, MAX_DURATION, MAX_LIST, MOMENT_RANGE, PRESENCE, RANGE, RELATIVE,
    SETS, TEXT, in_range, is_number, json_type, parse_datetime,
)

_DURATION = re.compile(r"^([1-9][0-9]{0,6})([mhdw])$")
_WHOLE_DAYS = re.compile(r"^([1-9][0-9]{0,6})([dw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ValueParser:
    def __init__(self, registry: Registry):
        self.registry = registry
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path=path, code=code, message=message))

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


def _low(value):
    return value.start if isinstance(value, Moment) else value
