"""Reading the rule language's world: a definition or a lone condition parsed against the
tenant (rule_context, condition_context: the only places that parse),
the registry it is parsed against, referenced segments and the order dependents evaluate in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from common.errors import Problem
from customers.models import EventDefinition, Survey, TraitDefinition
from customers.rollups import rollup_events_ready, rollup_lifetimes_ready, rollup_properties_ready
from segments.models import (
    Segment,
)
from segments.rules.nodes import Group, Registry, Rollups, RuleError
from segments.rules.parse import aggregated_properties, parse, references
from segments.rules.shapes import counted_events, lifetime_events
from segments.rules.vocabulary import VERSION

# One round trip instead of four: the registry is read before every parse (each preview
# keystroke in the builder, each evaluation), and the reads cost their latency, not their rows.
_REGISTRY_SQL = """
SELECT (SELECT coalesce(json_object_agg(key, type), '{{}}') FROM {traits} WHERE NOT is_builtin),
       (SELECT coalesce(json_agg(name), '[]') FROM {events}),
       (SELECT coalesce(json_object_agg(key, kind), '{{}}') FROM {surveys}),
       (SELECT coalesce(json_object_agg(key, "references"), '{{}}') FROM {segments} WHERE key <> %s)
"""


@dataclass(frozen=True)
class ParsedRule:
    """A definition parsed against the tenant's registry: its tree and the parser's
    warnings, each path under `definition.` as a request names it."""

    group: Group
    warnings: list[Problem]

    @property
    def references(self) -> frozenset[str]:
        """Keys of the segments the rule refers to."""
        return frozenset(references(self.group))

    def reference_ids(self) -> dict[str, int]:
        return reference_ids(self.references)

    def rollups(self, now: datetime, *, scoped: bool = False) -> Rollups | None:
        return rule_rollups(self.group, now, scoped=scoped)


def rule_rollups(group: Group, now: datetime, *, scoped: bool = False) -> Rollups | None:
    """What the daily rollups can answer for `group` (compile_rule's `rollups`); None when
    settings.SEGMENT_ROLLUPS is off. The registries are read only for a rule that has
    something they could answer. `scoped`: a statement limited to some customers (an
    incremental check) reads counts from the events anyway, so the day registry is not read
    on that hot path; the lifetimes are, as their one row a customer beats a probe of every
    month's events."""
    if not settings.SEGMENT_ROLLUPS:
        return None
    return Rollups(values=rollup_properties_ready() if aggregated_properties(group) else frozenset(),
                   days=rollup_events_ready() if counted_events(group, now) and not scoped else frozenset(),
                   lifetimes=rollup_lifetimes_ready() if lifetime_events(group, now) else frozenset())


def rule_context(*, definition: Any, self_key: str | None = None, registry: Registry | None = None) -> ParsedRule:
    """The one place a definition is parsed against the tenant. `self_key`: the segment's
    own key (a reference to it is a cycle); `registry`: one already read for many segments.
    Raises RuleError with paths under `definition.`."""
    try:
        group, warnings = parse(definition, registry if registry is not None else rule_registry(self_key=self_key))
    except RuleError as error:
        raise error.prefixed("definition") from None
    return ParsedRule(group=group, warnings=[_under_definition(w) for w in warnings])


def condition_context(*, condition: Any, registry: Registry | None = None) -> tuple[Any, list[Problem]]:
    """One condition parsed against the tenant as a definition holding only it would be (a
    report's event, steps or window): the typed condition and its warnings, every path the
    condition's own (`steps[1]`, not `conditions[0].steps[1]`). Raises RuleError."""
    doc = {"version": VERSION, "match": "all", "conditions": [condition]}
    try:
        group, warnings = parse(doc, registry if registry is not None else rule_registry())
    except RuleError as error:
        raise RuleError([_under_condition(p) for p in error.problems]) from None
    return group.conditions[0], [_under_condition(w) for w in warnings]


def _under_condition(problem: Problem) -> Problem:
    return Problem(problem.path.removeprefix("conditions[0].").removeprefix("conditions[0]"), problem.code,
                   problem.message)


def _under_definition(problem: Problem) -> Problem:
    return Problem(f"definition.{problem.path}" if problem.path else "definition", problem.code, problem.message)


def rule_registry(*, self_key: str | None = None) -> TenantRegistry:
    """What the parser needs of this tenant: custom trait types, known events, surveys and
    the reference graph of the other segments — read when the parser first asks."""
    return TenantRegistry(self_key=self_key)


class TenantRegistry:
    """The current tenant's Registry, read on first use: a definition of metrics, consents
    and built-in traits alone parses without it (a round trip every builder keystroke would
    pay). Bound to the schema it was made in: read in another tenant it would answer for
    the wrong one."""

    def __init__(self, *, self_key: str | None = None):
        self.self_key = self_key
        self._schema = connection.schema_name
        self._registry: Registry | None = None

    def read(self) -> Registry:
        if self._registry is None:
            if connection.schema_name != self._schema:
                raise RuntimeError(f"registry of schema {self._schema} read in {connection.schema_name}")
            self._registry = _read_registry(self.self_key)
        return self._registry

    def __getattr__(self, name: str):
        """traits, events, surveys, segments and for_segment: the read registry's."""
        if name not in _REGISTRY_READS:
            raise AttributeError(name)
        return getattr(self.read(), name)


_REGISTRY_READS = {"traits", "events", "surveys", "segments", "for_segment"}


def _read_registry(self_key: str | None) -> Registry:
    sql = _REGISTRY_SQL.format(traits=TraitDefinition._meta.db_table, events=EventDefinition._meta.db_table,
                               surveys=Survey._meta.db_table, segments=Segment._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [self_key or ""])
        traits, events, surveys, segments = cursor.fetchone()
    return Registry(traits=traits, events=set(events), surveys=surveys,
                    segments={key: set(refs) for key, refs in segments.items()}, self_key=self_key)


def reference_ids(keys) -> dict[str, int]:
    """The ids of the segments a rule references, by key (what compile_rule's `refs` takes).
    No query for a rule without references, most of them: building even an empty one cost
    ~0.7 ms of a ~15 ms preview."""
    keys = set(keys)
    return dict(Segment.objects.filter(key__in=keys).values_list("key", "id")) if keys else {}


def dependents_of(keys: set[str]) -> list[Segment]:
    """Dynamic segments whose definitions reference any of `keys`."""
    return list(Segment.objects.filter(references__overlap=sorted(keys), kind=Segment.Kind.DYNAMIC))


def in_dependency_order(segments: list[Segment]) -> list[Segment]:
    """Referenced segments before the segments that reference them (stable by id)."""
    by_key = {s.key: s for s in segments}
    ordered, seen = [], set()

    def visit(segment: Segment, trail: frozenset) -> None:
        if segment.key in seen or segment.key in trail:
            return
        for key in sorted(segment.references):
            if key in by_key:
                visit(by_key[key], trail | {segment.key})
        seen.add(segment.key)
        ordered.append(segment)

    for segment in sorted(segments, key=lambda s: s.pk):
        visit(segment, frozenset())
    return ordered
