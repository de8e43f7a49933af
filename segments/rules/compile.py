"""Typed nodes → one parameterised SQL statement selecting the ids of matching customers.

Every condition becomes a two-valued boolean over `c` (customers_customer): trait and
metric comparisons read columns (wrapped in COALESCE(…, false) so a missing value is
false, never NULL — except a trait test under no NOT, where NULL filters the row out as
false does and the bare column test can use its index), behaviour becomes a semi-join `c.id IN (SELECT customer_id … GROUP BY
… HAVING …)`. A measure that a customer with no events satisfies (`count eq 0`, `sum lt
5`) is compiled as the complement, `NOT (c.id IN (… HAVING NOT …))`, so customers with no
events match without a per-customer loop. A count that only asks "at least one" (gte 1)
or "none" (eq 0) is `EXISTS` / `NOT EXISTS` instead, and a two-step sequence a semi-join
with a correlated EXISTS: no aggregate to build, and the planner is free to pick hash
semi-/anti-joins (measured on 1M customers / 20M events: bench/segments.py). `negate` is
SQL NOT, exact because every expression is two-valued; a negated group's NOT is pushed
down to its conditions (De Morgan), so a negated EXISTS can become an anti-join. When the
whole definition is one such semi-join (a metric, a grouped event measure, a survey
answer, a granted consent), its rows are the statement: customers_customer is not read.

Indexes the shapes rely on (customers migrations): customers_event (name, timestamp,
customer_id) for event conditions over everyone, (customer_id, name, timestamp) for the
same conditions scoped to a few customers (incremental evaluation) and for sequence steps;
customers_eventlifetime's key (customer_id, name) for an all-time "did it" / "never" probed
per customer, one row where the events have an index per month.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from segments.rules.nodes import (
    Comparison, ConsentCondition, EventCondition, Group, MetricCondition, Moment, Rollups, SegmentCondition,
    SequenceCondition, SurveyCondition, TraitCondition, When, Window, utc_midnight,
)
from segments.rules.shapes import drives, event_shape, lifetime_answers, lone_condition, survey_complemented
from segments.rules.vocabulary import ANY_EVENT, PRESENCE
from segments.rules.zones import POSTGRES_NAME, known_zones


_JSON_GUARD = {"string": "string", "number": "number", "boolean": "boolean", "datetime": "string", "list": "array"}


@dataclass(frozen=True)
class Sql:
    text: str
    params: dict  # named: %(p0)s … (a fragment may use its placeholder more than once)


@dataclass
class _Builder:
    now: datetime
    refs: dict[str, int]
    params: dict = field(default_factory=dict)
    only: str | None = None  # placeholder of the customer ids an incremental evaluation checks
    correlate: bool = False  # scoped event counts probed per customer row (see compile_rule)
    # The condition being compiled stands in the WHERE under AND/OR only (no NOT above it):
    # there NULL filters a row out as false does, so its tests need no COALESCE — which
    # hides a column from the planner's indexes (see value_test).
    positive: bool = False

    zone: str | None = None  # the local zone expression of the events' customer (tz), once per statement
    rollups: Rollups | None = None  # the daily rollups to read whole days from (None: events only)

    def p(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    # ------------------------------------------------------------ comparisons

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

    # ------------------------------------------------------------ conditions

    def trait(self, node: TraitCondition) -> str:
        key = node.custom_key
        if key is not None:
            return self.json_value("c.traits", key, node.cmp)
        column = f"c.{node.field}"
        present = f"{column} IS NOT NULL"  # "" and an empty tech_stack are present values
        if node.field == "birth_date":
            column = "(c.birth_date::timestamp AT TIME ZONE 'UTC')"
        return self.value_test(present, column, node.cmp)

    def restrict(self, column: str) -> str:
        """Incremental evaluations pass their customers into every subquery, so the work is
        proportional to the customers checked, not to the tenant's events."""
        return f" AND {column} = ANY({self.only})" if self.only else ""

    def window(self, alias: str, window: Window | None) -> str:
        parts = [f"{alias}.timestamp < {self.p(self.now)}"]
        if window is not None:
            start, end = window.bounds(self.now)
            if start is not None:
                parts.append(f"{alias}.timestamp >= {self.p(start)}")
            if end < self.now:
                parts.append(f"{alias}.timestamp < {self.p(end)}")
        return " AND ".join(parts)

    def filters(self, alias: str, where) -> str:
        return "".join(f" AND {self.json_value(f'{alias}.properties', f.property, f.cmp)}" for f in where)

    def event_rows(self, node: EventCondition, *, correlated: bool = False) -> tuple[str, str, str]:
        """The FROM and WHERE of the condition's events and the SQL of its measure's test
        over them. `when` reads the customer's time zone: its events join their customer
        (tz). A share keeps every event in the group and counts the ones `when` keeps.
        `correlated`: read per customer row (e.customer_id = c.id), so not restricted again."""
        m = node.measure
        source = "customers_event e" + (" JOIN customers_customer tz ON tz.id = e.customer_id" if node.when else "")
        named = "" if node.event == ANY_EVENT else f"e.name = {self.p(node.event)} AND "
        scoped = "" if correlated else self.restrict("e.customer_id")
        where = f"{named}{self.window('e', node.window)}{self.filters('e', node.where)}{scoped}"
        if m.kind == "share":
            return source, where, self.share(f"count(*) FILTER (WHERE {self.at_time(node.when)})", "count(*)", m.cmp)
        if node.when is not None:
            where += f" AND {self.at_time(node.when)}"
        if m.kind == "aggregate":
            prop = self.p(m.property)
            where += f" AND jsonb_typeof(e.properties -> {prop}) = 'number'"
            return source, where, self.compare(f"{m.fn}((e.properties -> {prop})::numeric)", m.cmp)
        return source, where, self.compare(_EVENT_MEASURES[m.kind], m.cmp)

    def event(self, node: EventCondition) -> str:
        """A count that only asks "did it" (every count ≥ 1 passes) is an EXISTS test, one
        that asks "never" (no count ≥ 1 passes) its negation: no GROUP BY to aggregate, and
        the planner gets a semi-join / anti-join instead of a hashed subplan."""
        shape = event_shape(node, self.now)
        if shape in ("exists", "not_exists"):
            if self.lifetime(node):
                # An event before the end exactly when the first one is: one row, where the
                # events' index is one probe per month's table.
                exists = (f"EXISTS (SELECT 1 FROM customers_eventlifetime l WHERE l.customer_id = c.id "
                          f"AND l.name = {self.p(node.event)} AND l.first_at < {self.p(self.end(node))})")
                return exists if shape == "exists" else f"NOT {exists}"
            # Correlated (see compile_rule): probed per customer the cheaper conditions kept,
            # not a semi- or anti-join over every scoped customer's events.
            source, where, _ = self.event_rows(node, correlated=self.correlate)
            exists = f"EXISTS (SELECT 1 FROM {source} WHERE e.customer_id = c.id AND {where})"
            return exists if shape == "exists" else f"NOT {exists}"
        if self.correlate and node.measure.kind in ("count", "distinct_days"):
            # Likewise a count, which is never NULL: a customer without events counts 0.
            source, where, _ = self.event_rows(node, correlated=True)
            counted = f"(SELECT {_EVENT_MEASURES[node.measure.kind]} FROM {source} WHERE e.customer_id = c.id AND {where})"
            if node.measure.kind == "count" and self.lifetime(node):
                # The lifetime's count unless the customer has events at or after the end.
                end = self.p(self.end(node))
                counted = (f"COALESCE((SELECT CASE WHEN l.last_at < {end} THEN l.events ELSE {counted} END "
                           f"FROM customers_eventlifetime l WHERE l.customer_id = c.id "
                           f"AND l.name = {self.p(node.event)}), 0)")
            return self.compare(counted, node.measure.cmp)
        if shape == "not_in":  # a customer without events passes too: as `having`'s complement
            return f"NOT (c.id IN ({self.passing(node, fails=True)}))"
        return f"c.id IN ({self.passing(node)})"

    def passing(self, node: EventCondition, *, fails: bool = False) -> str:
        """The ids (one row each) of the customers with events of the condition whose
        measure passes its test, or with `fails` fails it: from the lifetime totals or the
        daily rollups where they can answer, else grouped from the events."""
        totals = self.lifetimed(node, fails=fails)
        if totals is None:
            totals = self.totalled(node, fails=fails)
        if totals is not None:
            return totals
        grouped, test = self.rolled(node) or self.event_grouped(node)
        return f"{grouped} HAVING {'NOT ' if fails else ''}({test})"

    def event_grouped(self, node: EventCondition) -> tuple[str, str]:
        """`SELECT customer_id … GROUP BY customer_id` over the condition's events and its
        measure's test (for HAVING)."""
        source, where, test = self.event_rows(node)
        return f"SELECT e.customer_id FROM {source} WHERE {where} GROUP BY e.customer_id", test

    def lifetime(self, node: EventCondition) -> bool:
        """Whether the lifetime rows can answer the condition (see shapes.lifetime_answers)."""
        return self.rollups is not None and node.event in self.rollups.lifetimes and lifetime_answers(node, self.now)

    def end(self, node: EventCondition) -> datetime:
        """Where the condition's window ends (events count before it): `now` at the latest."""
        return node.window.bounds(self.now)[1] if node.window is not None else self.now

    def lifetimed(self, node: EventCondition, *, fails: bool) -> str | None:
        """A count or first/last time without a window start from the lifetime rows: one row
        per customer whose last event is before the window's end; the few others (events at
        or after it: stamped ahead of `now`, or after a `to` date) grouped from their events.
        The first time is the row's whenever it is before the end. None where the lifetimes
        cannot answer."""
        if not self.lifetime(node):
            return None
        m, end, negation = node.measure, self.p(self.end(node)), "NOT " if fails else ""
        rows = (f"customers_eventlifetime l WHERE l.name = {self.p(node.event)} AND l.first_at < {end}"
                f"{self.restrict('l.customer_id')}")
        if m.kind == "first_occurred":
            return f"SELECT l.customer_id FROM {rows} AND {negation}({self.compare('l.first_at', m.cmp)})"
        single = "l.events" if m.kind == "count" else "l.last_at"
        source, where, test = self.event_rows(node)
        return (f"SELECT l.customer_id FROM {rows} AND l.last_at < {end} AND {negation}({self.compare(single, m.cmp)}) "
                f"UNION ALL SELECT e.customer_id FROM {source} WHERE {where} AND e.customer_id IN "
                f"(SELECT l.customer_id FROM {rows} AND l.last_at >= {end}) GROUP BY e.customer_id "
                f"HAVING {negation}({test})")

    def totalled(self, node: EventCondition, *, fails: bool) -> str | None:
        """An aggregate without a window start from the lifetime totals: one row per customer
        whose latest value is before the window's end; the few others (events at or after
        it, e.g. stamped in the future) from the daily values and the end's partial day.
        None where the totals cannot answer (see `rolled`, and a window start)."""
        m = node.measure
        if (m.kind != "aggregate" or self.rollups is None or (node.event, m.property) not in self.rollups.values
                or node.where or node.when is not None or node.event == ANY_EVENT
                or (node.window is not None and node.window.bounds(self.now)[0] is not None)):
            return None
        end = min(node.window.bounds(self.now)[1], self.now) if node.window is not None else self.now
        totals = (f"customers_eventtotal t WHERE t.name = {self.p(node.event)} AND t.property = {self.p(m.property)}"
                  f"{self.restrict('t.customer_id')}")
        single = {"sum": "t.total", "min": "t.low", "max": "t.high", "avg": "t.total / t.n::numeric"}[m.fn]
        late = f"SELECT t.customer_id FROM {totals} AND t.latest >= {self.p(end)}"
        grouped, test = self.rolled(node, among=late)
        negation = "NOT " if fails else ""
        return (f"SELECT t.customer_id FROM {totals} AND t.latest < {self.p(end)} "
                f"AND {negation}({self.compare(single, m.cmp)}) "
                f"UNION ALL {grouped} HAVING {negation}({test})")

    def rolled(self, node: EventCondition, among: str | None = None) -> tuple[str, str] | None:
        """The condition's grouped rows from the rollups for the whole UTC days of its window
        and from the events for the partial days at its edges, or None where rollups cannot
        answer: property filters, time of week, a share, any event, an aggregate of a property
        not rolled up, a window without a whole day. `among`: only the customers it selects."""
        m = node.measure
        if (self.rollups is None or node.where or node.when is not None or node.event == ANY_EVENT
                or m.kind == "share"
                or (m.kind == "aggregate" and (node.event, m.property) not in self.rollups.values)):
            return None
        if m.kind != "aggregate" and (self.only or node.event not in self.rollups.days):
            # Scoped to some customers (incremental checks, the estimate's sample) a count is
            # an index-only probe of the customer's events, while the rollup adds a probe
            # per edge and heap reads (bench/segments.py estimate_*, 1M / 20M); an aggregate
            # still gains: numbers instead of JSON read from each event.
            return None
        start, end = node.window.bounds(self.now) if node.window is not None else (None, self.now)
        end = min(end, self.now)
        last = end.astimezone(timezone.utc).date()  # days before it are whole
        first = None if start is None else _whole_day_from(start)
        if first is not None and first >= last:
            return None
        name = self.p(node.event)
        if m.kind == "aggregate":
            prop = self.p(m.property)
            table = (f"customers_eventdayvalue r WHERE r.name = {name} AND r.property = {prop}")
            value = f"(e.properties -> {prop})::numeric"
            rolled_cols, raw_cols = "r.n, r.total, r.low, r.high", f"1, {value}, {value}, {value}"
            raw_filter = f" AND jsonb_typeof(e.properties -> {prop}) = 'number'"
            measure = {"sum": "sum(u.total)", "min": "min(u.low)", "max": "max(u.high)",
                       "avg": "sum(u.total) / sum(u.n)::numeric"}[m.fn]
            columns = "n, total, low, high"
        else:
            table = f"customers_eventday r WHERE r.name = {name}"
            raw_filter = ""
            rolled_cols, raw_cols, columns, measure = {
                "count": ("r.events", "1", "n", "sum(u.n)"),
                "distinct_days": ("r.day", "(e.timestamp AT TIME ZONE 'UTC')::date", "day", "count(DISTINCT u.day)"),
                "first_occurred": ("r.first_at", "e.timestamp", "t", "min(u.t)"),
                "last_occurred": ("r.last_at", "e.timestamp", "t", "max(u.t)"),
            }[m.kind]
        days = f" AND r.day < {self.p(last)}" + (f" AND r.day >= {self.p(first)}" if first is not None else "")

        def of(alias: str) -> str:  # `among` is already scoped: one array test, not one per part
            return f" AND {alias}.customer_id IN ({among})" if among else self.restrict(f"{alias}.customer_id")

        parts = [f"SELECT r.customer_id, {rolled_cols} FROM {table}{days}{of('r')}"]
        edges = [(self.p(start), self.p(utc_midnight(first)))] if first is not None and start < utc_midnight(first) else []
        if utc_midnight(last) < end:
            edges.append((self.p(utc_midnight(last)), self.p(end)))
        raw = f"SELECT e.customer_id, {raw_cols} FROM customers_event e WHERE e.name = {name}{raw_filter}"
        if self.only and len(edges) == 2:
            # Scoped to some customers, each is one index probe: both edges in one range,
            # the whole days between them skipped, rather than a probe per edge.
            middle = f"e.timestamp >= {edges[0][1]} AND e.timestamp < {edges[1][0]}"
            parts.append(f"{raw} AND e.timestamp >= {edges[0][0]} AND e.timestamp < {edges[1][1]} "
                         f"AND NOT ({middle}){of('e')}")
            edges = []
        for low, high in edges:
            parts.append(f"{raw} AND e.timestamp >= {low} AND e.timestamp < {high}{of('e')}")
        union = " UNION ALL ".join(parts)
        return (f"SELECT u.customer_id FROM ({union}) AS u(customer_id, {columns}) GROUP BY u.customer_id",
                self.compare(measure, m.cmp))

    def having(self, grouped: str, test: str, *, complement: bool) -> str:
        """Customers whose aggregate passes `test`; with `complement` (a customer without
        rows passes too) the complement of those who have rows and fail, so customers
        without rows match without a per-customer loop."""
        if complement:
            return f"NOT (c.id IN ({grouped} HAVING NOT ({test})))"
        return f"c.id IN ({grouped} HAVING {test})"

    def sequence(self, node: SequenceCondition) -> str:
        """Greedy, as the reference: from each first-step event, the earliest event of each
        next step strictly later; a customer matches when some start finishes in time."""
        first = node.steps[0]
        if len(node.steps) == 2:
            # Two steps: the greedy earliest next step is in time exactly when some second-step
            # event falls in (t1, t1 + within]; as a semi-join the planner can hash the second
            # step's events once instead of probing the customer's events per first-step event.
            second = node.steps[1]
            return (f"c.id IN (SELECT e1.customer_id FROM customers_event e1 WHERE e1.name = {self.p(first.event)} "
                    f"AND {self.window('e1', node.window)}{self.filters('e1', first.where)}"
                    f"{self.restrict('e1.customer_id')} AND EXISTS (SELECT 1 FROM customers_event e2 "
                    f"WHERE e2.customer_id = e1.customer_id AND e2.name = {self.p(second.event)} "
                    f"AND e2.timestamp > e1.timestamp AND e2.timestamp <= e1.timestamp + {self.p(node.within)} "
                    f"AND {self.window('e2', node.window)}{self.filters('e2', second.where)}))")
        joins, previous = self.chain(node)
        return (f"c.id IN (SELECT e1.customer_id FROM customers_event e1 {' '.join(joins)} "
                f"WHERE e1.name = {self.p(first.event)} AND {self.window('e1', node.window)}"
                f"{self.filters('e1', first.where)}{self.restrict('e1.customer_id')} "
                f"AND {previous} - e1.timestamp <= {self.p(node.within)})")

    def chain(self, node: SequenceCondition) -> tuple[list[str], str]:
        """From a first-step event e1, the lateral joins s2 … sk that take the earliest event
        of each next step strictly after the previous one (NULL from the first step that has
        none in time on), and the expression of the last step's time."""
        joins, previous = [], "e1.timestamp"
        # Every step of a match falls in (t1, t1 + within]: bounding each step's search there
        # changes no result (a greedy next step later than that fails the final test anyway)
        # and turns an index scan over all the customer's later events into a short range.
        deadline = f"e1.timestamp + {self.p(node.within)}"
        for index, step in enumerate(node.steps[1:], start=2):
            alias = f"e{index}"
            joins.append(
                f"CROSS JOIN LATERAL (SELECT min({alias}.timestamp) AS t FROM customers_event {alias} "
                f"WHERE {alias}.customer_id = e1.customer_id AND {alias}.name = {self.p(step.event)} "
                f"AND {alias}.timestamp > {previous} AND {alias}.timestamp <= {deadline} "
                f"AND {self.window(alias, node.window)}{self.filters(alias, step.where)}) s{index}")
            previous = f"s{index}.t"
        return joins, previous

    def metric_rows(self, node: MetricCondition) -> str:
        column = f"m.{node.metric}"
        present = f"{column} <> ''" if node.metric in ("rfm_segment", "cluster") else f"{column} IS NOT NULL"
        expr = column if node.cmp.type == "string" else f"{column}::numeric"
        test = present if node.cmp.op in PRESENCE else f"{present} AND {self.compare(expr, node.cmp)}"
        return (f"SELECT m.customer_id FROM customers_customermetrics m WHERE {test}"
                f"{self.restrict('m.customer_id')}")

    def metric(self, node: MetricCondition) -> str:
        """A semi-join on CustomerMetrics (its rfm_segment index serves `rfm_segment in …`);
        a customer without a metrics row lacks every metric."""
        rows = self.metric_rows(node)
        return f"NOT (c.id IN ({rows}))" if node.cmp.op == "is_not_set" else f"c.id IN ({rows})"

    def survey_where(self, node: SurveyCondition) -> str:
        scored = "" if node.measure == "count" else " AND r.score IS NOT NULL"  # count: every response
        where = (f"FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id "
                 f"WHERE s.key = {self.p(node.survey)}{scored} AND r.responded_at < {self.p(self.now)}")
        if node.question is not None:
            where += f" AND r.question = {self.p(node.question)}"
        return where + self.restrict("r.customer_id")

    def survey_latest_rows(self, node: SurveyCondition) -> str:
        latest = (f"SELECT DISTINCT ON (r.customer_id) r.customer_id, r.score {self.survey_where(node)} "
                  "ORDER BY r.customer_id, r.responded_at DESC, r.id DESC")
        return f"SELECT l.customer_id FROM ({latest}) l WHERE {self.compare('l.score', node.cmp)}"

    def survey(self, node: SurveyCondition) -> str:
        if node.measure == "latest":
            return f"c.id IN ({self.survey_latest_rows(node)})"
        agg = "count(*)" if node.measure == "count" else "avg(r.score)"
        grouped = f"SELECT r.customer_id {self.survey_where(node)} GROUP BY r.customer_id"
        return self.having(grouped, self.compare(agg, node.cmp), complement=survey_complemented(node, self.now))

    def segment(self, node: SegmentCondition) -> str:
        now = self.p(self.now)
        member = (f"c.id IN (SELECT sm.customer_id FROM segments_membership sm WHERE sm.segment_id = "
                  f"{self.p(self.refs[node.segment])} AND sm.entered_at <= {now} "
                  f"AND (sm.exited_at IS NULL OR sm.exited_at > {now}){self.restrict('sm.customer_id')})")
        return member if node.inside else f"NOT ({member})"

    def consent_rows(self, node: ConsentCondition) -> str:
        return (f"SELECT cs.customer_id FROM customers_consent cs WHERE cs.channel = {self.p(node.channel)} "
                f"AND cs.granted{self.restrict('cs.customer_id')}")

    def consent(self, node: ConsentCondition) -> str:
        granted = f"c.id IN ({self.consent_rows(node)})"
        return granted if node.granted else f"NOT ({granted})"

    def driving_rows(self, node) -> str:
        """The customer ids of a condition that `drives` (one row per customer)."""
        if isinstance(node, MetricCondition):
            return self.metric_rows(node)
        if isinstance(node, ConsentCondition):
            return self.consent_rows(node)  # (customer, channel) is unique
        if isinstance(node, SurveyCondition):
            if node.measure == "latest":
                return self.survey_latest_rows(node)
            agg = "count(*)" if node.measure == "count" else "avg(r.score)"
            return (f"SELECT r.customer_id {self.survey_where(node)} GROUP BY r.customer_id "
                    f"HAVING {self.compare(agg, node.cmp)}")
        return self.passing(node)

    def node(self, node, negated: bool = False) -> str:
        """`negated`: an enclosing group's NOT, pushed down (De Morgan, exact because every
        expression is two-valued) so that it lands on the conditions: a negated EXISTS at
        the top level of the WHERE becomes an anti-join; under NOT (… OR …) it stays a
        subplan per row."""
        negated = negated != node.negate
        if isinstance(node, Group):
            conjunction = (node.match == "all") != negated
            joiner = " AND " if conjunction else " OR "
            return "(" + joiner.join(self.node(child, negated) for child in node.conditions) + ")"
        self.positive = not negated
        try:
            sql = getattr(self, _METHOD[type(node)])(node)
        finally:
            self.positive = False
        return f"NOT ({sql})" if negated else sql


_EVENT_MEASURES = {"count": "count(*)", "distinct_days": "count(DISTINCT (e.timestamp AT TIME ZONE 'UTC')::date)",
                   "first_occurred": "min(e.timestamp)", "last_occurred": "max(e.timestamp)"}
_METHOD = {TraitCondition: "trait", EventCondition: "event", SequenceCondition: "sequence",
           MetricCondition: "metric", SurveyCondition: "survey", SegmentCondition: "segment",
           ConsentCondition: "consent"}


def _whole_day_from(moment: datetime) -> date:
    """The first UTC day that starts at or after `moment`."""
    utc = moment.astimezone(timezone.utc)
    return utc.date() if utc == utc_midnight(utc.date()) else utc.date() + timedelta(days=1)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _json_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


def sequence_chains(node: SequenceCondition, *, now: datetime) -> Sql:
    """Every start of a sequence and the greedy chain from it, as `sequence` takes it: a row
    per first-step event with customer_id, t1 … tk, where tj is NULL from the first step
    that has no event in time on. Funnels count these rows, so "reached step k" of a
    funnel is exactly a sequence of its first k steps (insights/reports/funnel.py)."""
    builder = _Builder(now=now, refs={})
    first = node.steps[0]
    joins, _ = builder.chain(node)
    times = "".join(f", s{index}.t AS t{index}" for index in range(2, len(node.steps) + 1))
    return Sql(f"SELECT e1.customer_id, e1.timestamp AS t1{times} FROM customers_event e1 {' '.join(joins)} "
               f"WHERE e1.name = {builder.p(first.event)} AND {builder.window('e1', node.window)}"
               f"{builder.filters('e1', first.where)}", builder.params)


def compile_rule(group: Group, *, now: datetime, refs: dict[str, int] | None = None,
                 only: list[int] | None = None, only_sql: str | None = None, rollups: Rollups | None = None) -> Sql:
    """One statement selecting the column `id`, each matching customer once, at `now`.
    `refs` maps each referenced segment key to its id (resolved by the caller); `only`
    limits the statement to those customers (incremental evaluation), `only_sql` to the
    bigint[] an SQL expression without parameters computes (the preview's probes)."""
    if only is not None and only_sql is not None:
        raise ValueError("only or only_sql, not both")
    builder = _Builder(now=now, refs=refs or {}, rollups=rollups)
    if only is not None:
        builder.only = builder.p(list(only))
    elif only_sql is not None:
        builder.only = f"(({only_sql})::bigint[])"  # cast: an array, not `= ANY (subquery)` of rows
    lone = lone_condition(group)
    # Scoped with other conditions beside them, event counts are probed per customer those
    # kept; alone, a join over every scoped customer's events is cheaper (bench/segments.py
    # estimate_nested_any_not against estimate_never_in_30d).
    builder.correlate = bool(builder.only) and lone is None
    if lone is not None and not lone[1] and drives(lone[0], now):
        # The members are the semi-join's rows: reading customers_customer only to look
        # each id up again would add a scan of every customer and a hash join (bench/segments.py
        # metric_rfm). Every customer_id there is a customer: foreign keys.
        return Sql(f"SELECT d.customer_id AS id FROM ({builder.driving_rows(lone[0])}) d", builder.params)
    where = builder.node(group)
    scope = f"c.id = ANY({builder.only}) AND " if builder.only else ""
    return Sql(f"SELECT c.id FROM customers_customer c WHERE {scope}{where}", builder.params)
