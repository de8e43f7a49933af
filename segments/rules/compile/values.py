"""How a value is tested in SQL: comparisons of columns, JSON values, times and shares,
each bound as a named parameter (%(p0)s …) of the statement being built."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from segments.rules.nodes import Comparison, Moment, When
from segments.rules.vocabulary import PRESENCE
from segments.rules.zones import POSTGRES_NAME, known_zones

_JSON_GUARD = {"string": "string", "number": "number", "boolean": "boolean", "datetime": "string", "list": "array"}


@dataclass(frozen=True)
class Sql:
    text: str
    params: dict  # named: %(p0)s … (a fragment may use its placeholder more than once)


@dataclass
class ValueSql:
    now: datetime
    params: dict = field(default_factory=dict)
    # The condition being compiled stands in the WHERE under AND/OR only (no NOT above it):
    # there NULL filters a row out as false does, so its tests need no COALESCE — which
    # hides a column from the planner's indexes (see value_test).
    positive: bool = False
    zone: str | None = None  # the local zone expression of the events' customer (tz), once per statement

    def p(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def moment(self, expr: str, op: str, value) -> str:
        if op == "anniversary_within":
            return self.anniversary(expr, value)
        if op == "within_last":
            return f"({expr} >= {self.p(self.now - value)} AND {expr} < {self.p(self.now)})"
        if op == "more_than_ago":
            return f"{expr} < {self.p(self.now - value)}"
        if op == "between":
            return f"({self.moment(expr, 'gte', value[0])} AND {self.moment(expr, 'lte', value[1])})"
        m: Moment = value
        if op in ("eq", "neq"):
            same = f"({expr} >= {self.p(m.start)} AND {expr} < {self.p(m.end)})" if m.is_date \
                else f"{expr} = {self.p(m.value)}"
            return same if op == "eq" else f"NOT {same}"
        if op in ("gt", "after"):
            return f"{expr} >= {self.p(m.end)}" if m.is_date else f"{expr} > {self.p(m.value)}"
        if op == "gte":
            return f"{expr} >= {self.p(m.start)}"
        if op in ("lt", "before"):
            return f"{expr} < {self.p(m.start)}"
        if op == "lte":
            return f"{expr} < {self.p(m.end)}" if m.is_date else f"{expr} <= {self.p(m.value)}"
        raise ValueError(op)

    def anniversary(self, expr: str, span: timedelta) -> str:
        """The stored time's UTC month and day is one of the days from today (UTC) to
        today + span: those days are listed here, so the test is one hashed ANY per row
        (29 February stands on 28 February in years without one)."""
        today = self.now.astimezone(timezone.utc).date()
        month_days = set()
        for offset in range(span.days):
            day = today + timedelta(days=offset)
            month_days.add(day.month * 100 + day.day)
            if (day.month, day.day) == (2, 28) and not _leap(day.year):
                month_days.add(229)
        utc = f"({expr} AT TIME ZONE 'UTC')"
        return (f"(extract(month FROM {utc}) * 100 + extract(day FROM {utc}))::int "
                f"= ANY({self.p(sorted(month_days))}::int[])")

    def share(self, kept: str, every: str, cmp: Comparison) -> str:
        """kept ÷ every against the comparison, exact: kept op value × every (every > 0
        in a group that exists), so no division rounds a third."""
        op, value = cmp.op, cmp.value
        if op in ("in", "not_in"):
            test = " OR ".join(f"{kept} = {self.p(v)} * {every}" for v in value)
            return f"({test})" if op == "in" else f"NOT ({test})"
        if op == "between":
            return f"{kept} BETWEEN {self.p(value[0])} * {every} AND {self.p(value[1])} * {every}"
        sql_op = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"{kept} {sql_op} {self.p(value)} * {every}"

    def local_zone(self) -> str:
        """The zone name PostgreSQL reads the events' customer's (tz) local time in: a
        known IANA name (zones.py), else UTC."""
        if self.zone is None:
            renamed = " ".join(f"WHEN {self.p(name)} THEN {self.p(target)}" for name, target in POSTGRES_NAME.items())
            self.zone = (f"(CASE WHEN tz.timezone = ANY({self.p(sorted(known_zones()))}::text[]) "
                         f"THEN (CASE tz.timezone {renamed} ELSE tz.timezone END) ELSE 'UTC' END)")
        return self.zone

    def at_time(self, when: When) -> str:
        """The event (e) falls in `when` on its customer's (tz) local clock."""
        local = f"(e.timestamp AT TIME ZONE {self.local_zone()})"
        parts = []
        if when.days is not None:
            parts.append(f"extract(isodow FROM {local})::int = ANY({self.p(sorted(when.days))}::int[])")
        if when.hours is not None:
            hour = f"extract(hour FROM {local})::int"
            parts.append(f"{hour} >= {self.p(when.hours[0])} AND {hour} < {self.p(when.hours[1])}")
        return "(" + " AND ".join(parts) + ")"

    def compare(self, expr: str, cmp: Comparison, *, json_list: bool = False) -> str:
        """`expr` (of the comparison's SQL type, known not NULL) against the comparison."""
        op, value = cmp.op, cmp.value
        if cmp.type == "datetime":
            return self.moment(expr, op, value)
        if cmp.type == "list":
            return self.list_compare(expr, op, value, json_list=json_list)
        if op in ("eq", "neq", "gt", "gte", "lt", "lte"):
            sql_op = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            return f"{expr} {sql_op} {self.p(value)}"
        if op in ("in", "not_in"):
            test = f"{expr} = ANY({self.p(list(value))})"
            return test if op == "in" else f"NOT {test}"
        if op == "between":
            return f"{expr} BETWEEN {self.p(value[0])} AND {self.p(value[1])}"
        if op in ("contains", "not_contains"):
            return f"strpos(lower({expr}), lower({self.p(value)})) {'>' if op == 'contains' else '='} 0"
        if op == "starts_with":
            return f"starts_with(lower({expr}), lower({self.p(value)}))"
        if op == "ends_with":
            needle = self.p(value)
            return f"right(lower({expr}), length(lower({needle}))) = lower({needle})"
        raise ValueError(op)

    def list_compare(self, expr: str, op: str, values, *, json_list: bool) -> str:
        if not json_list:  # tech_stack: text[]
            array = self.p(list(values))
            if op == "has_any":
                return f"{expr} && {array}::varchar[]"
            if op == "has_all":
                return f"{expr} @> {array}::varchar[]"
            return f"NOT ({expr} && {array}::varchar[])"
        # JSON arrays: element equality is jsonb equality (types never coerce, 1 = 1.0).
        wanted = self.p([_json_text(v) for v in values])
        any_of = f"EXISTS (SELECT 1 FROM jsonb_array_elements({expr}) x WHERE x = ANY({wanted}::jsonb[]))"
        if op == "has_any":
            return any_of
        if op == "has_none":
            return f"NOT {any_of}"
        return (f"NOT EXISTS (SELECT 1 FROM unnest({wanted}::jsonb[]) v WHERE NOT EXISTS "
                f"(SELECT 1 FROM jsonb_array_elements({expr}) x WHERE x = v))")

    def value_test(self, present: str, expr: str, cmp: Comparison, *, json_list: bool = False) -> str:
        """Presence ops test `present`; value ops need it and the comparison. Two-valued
        (COALESCE) unless the condition is `positive`: `c.plan = ANY(…)` bare lets the
        planner AND the trait columns' index bitmaps, where the COALESCE form is a filter on
        a scan of every customer (bench/segments.py trait_filter holds it to the hand-written
        statement)."""
        if cmp.op == "is_not_set":
            return f"NOT COALESCE({present}, false)"
        test = present if cmp.op == "is_set" else f"{present} AND {self.compare(expr, cmp, json_list=json_list)}"
        return f"({test})" if self.positive else f"COALESCE({test}, false)"

    def json_value(self, doc: str, key: str, cmp: Comparison) -> str:
        """A value inside a JSON document (custom trait, event property) typed by `cmp`."""
        k = self.p(key)
        node = f"({doc} -> {k})"
        if cmp.type == "any" or cmp.op in PRESENCE:
            present = f"COALESCE(jsonb_typeof({node}) <> 'null', false)"
            return present if cmp.op == "is_set" else f"NOT {present}"
        guard = f"jsonb_typeof({node}) = '{_JSON_GUARD[cmp.type]}'"
        if cmp.type == "string":
            expr = f"({doc} ->> {k})"
        elif cmp.type == "number":
            expr = f"({node})::numeric"
        elif cmp.type == "boolean":
            expr = f"({node})::boolean"
        elif cmp.type == "datetime":
            expr = f"strata_timestamptz({doc} ->> {k})"
            guard = f"{guard} AND {expr} IS NOT NULL"
        else:
            expr = node
        return f"COALESCE({guard} AND {self.compare(expr, cmp, json_list=True)}, false)"


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _json_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)
