"""How behaviour is read: event conditions from the events, the daily rollups or the
lifetime rows, and sequences as chains of events.

Indexes these shapes rely on (customers migrations): customers_event (name, timestamp,
customer_id) for event conditions over everyone, (customer_id, name, timestamp) for the
same conditions scoped to a few customers (incremental evaluation) and for sequence steps;
customers_eventlifetime's key (customer_id, name) for an all-time "did it" / "never" probed
per customer, one row where the events have an index per month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from segments.rules.compile.values import Sql, ValueSql
from segments.rules.nodes import EventCondition, Rollups, SequenceCondition, Window, utc_midnight
from segments.rules.shapes import event_shape, lifetime_answers
from segments.rules.vocabulary import ANY_EVENT

_EVENT_MEASURES = {"count": "count(*)", "distinct_days": "count(DISTINCT (e.timestamp AT TIME ZONE 'UTC')::date)",
                   "first_occurred": "min(e.timestamp)", "last_occurred": "max(e.timestamp)"}


@dataclass
class EventSql(ValueSql):
    only: str | None = None  # placeholder of the customer ids an incremental evaluation checks
    correlate: bool = False  # scoped event counts probed per customer row (see compile_rule)
    rollups: Rollups | None = None  # the daily rollups to read whole days from (None: events only)

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


def _whole_day_from(moment: datetime) -> date:
    """The first UTC day that starts at or after `moment`."""
    utc = moment.astimezone(timezone.utc)
    return utc.date() if utc == utc_midnight(utc.date()) else utc.date() + timedelta(days=1)


def sequence_chains(node: SequenceCondition, *, now: datetime) -> Sql:
    """Every start of a sequence and the greedy chain from it, as `sequence` takes it: a row
    per first-step event with customer_id, t1 … tk, where tj is NULL from the first step
    that has no event in time on. Funnels count these rows, so "reached step k" of a
    funnel is exactly a sequence of its first k steps (insights/reports/funnel.py)."""
    builder = EventSql(now=now)
    first = node.steps[0]
    joins, _ = builder.chain(node)
    times = "".join(f", s{index}.t AS t{index}" for index in range(2, len(node.steps) + 1))
    return Sql(f"SELECT e1.customer_id, e1.timestamp AS t1{times} FROM customers_event e1 {' '.join(joins)} "
               f"WHERE e1.name = {builder.p(first.event)} AND {builder.window('e1', node.window)}"
               f"{builder.filters('e1', first.where)}", builder.params)
