"""Typed nodes → one parameterised SQL statement selecting the ids of matching customers.

Every condition becomes a two-valued boolean over `c` (customers_customer): trait and
metric comparisons read columns (wrapped in COALESCE(…, false) so a missing value is
false, never NULL — except a trait test under no NOT, where NULL filters the row out as
false does and the bare column test can use its index), behaviour becomes a semi-join
`c.id IN (SELECT customer_id … GROUP BY … HAVING …)`. A measure that a customer with no events satisfies (`count eq 0`, `sum lt
5`) is compiled as the complement, `NOT (c.id IN (… HAVING NOT …))`, so customers with no
events match without a per-customer loop. A count that only asks "at least one" (gte 1)
or "none" (eq 0) is `EXISTS` / `NOT EXISTS` instead, and a two-step sequence a semi-join
with a correlated EXISTS: no aggregate to build, and the planner is free to pick hash
semi-/anti-joins (measured on 1M customers / 20M events: bench/segments.py). `negate` is
SQL NOT, exact because every expression is two-valued; a negated group's NOT is pushed
down to its conditions (De Morgan), so a negated EXISTS can become an anti-join. When the
whole definition is one such semi-join (a metric, a grouped event measure, a survey
answer, a granted consent), its rows are the statement: customers_customer is not read.

The builder is layered: values.py tests a value, events.py reads behaviour, and this module
compiles the other conditions and composes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from segments.rules.compile.events import EventSql, sequence_chains
from segments.rules.compile.values import Sql
from segments.rules.nodes import (
    ConsentCondition, EventCondition, Group, MetricCondition, Rollups, SegmentCondition, SequenceCondition,
    SurveyCondition, TraitCondition,
)
from segments.rules.shapes import drives, lone_condition, survey_complemented
from segments.rules.vocabulary import PRESENCE

__all__ = ["Sql", "compile_rule", "sequence_chains"]


@dataclass
class RuleSql(EventSql):
    refs: dict[str, int] = field(default_factory=dict)  # each referenced segment key → its id

    def trait(self, node: TraitCondition) -> str:
        key = node.custom_key
        if key is not None:
            return self.json_value("c.traits", key, node.cmp)
        column = f"c.{node.field}"
        present = f"{column} IS NOT NULL"  # "" and an empty tech_stack are present values
        if node.field == "birth_date":
            column = "(c.birth_date::timestamp AT TIME ZONE 'UTC')"
        return self.value_test(present, column, node.cmp)

    def having(self, grouped: str, test: str, *, complement: bool) -> str:
        """Customers whose aggregate passes `test`; with `complement` (a customer without
        rows passes too) the complement of those who have rows and fail, so customers
        without rows match without a per-customer loop."""
        if complement:
            return f"NOT (c.id IN ({grouped} HAVING NOT ({test})))"
        return f"c.id IN ({grouped} HAVING {test})"

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


_METHOD = {TraitCondition: "trait", EventCondition: "event", SequenceCondition: "sequence",
           MetricCondition: "metric", SurveyCondition: "survey", SegmentCondition: "segment",
           ConsentCondition: "consent"}


def compile_rule(group: Group, *, now: datetime, refs: dict[str, int] | None = None,
                 only: list[int] | None = None, only_sql: str | None = None, rollups: Rollups | None = None) -> Sql:
    """One statement selecting the column `id`, each matching customer once, at `now`.
    `refs` maps each referenced segment key to its id (resolved by the caller); `only`
    limits the statement to those customers (incremental evaluation), `only_sql` to the
    bigint[] an SQL expression without parameters computes (the preview's probes)."""
    if only is not None and only_sql is not None:
        raise ValueError("only or only_sql, not both")
    builder = RuleSql(now=now, refs=refs or {}, rollups=rollups)
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
