"""Reads of segments: the rule registry, members now or at a past time, changes, overlap."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from customers.models import Customer, EventDefinition, Survey, TraitDefinition
from segments.models import Membership, MembershipChange, Segment
from segments.rules.nodes import Registry


def rule_registry(*, self_key: str | None = None) -> Registry:
    """What the parser needs of this tenant: custom trait types, known events, surveys and
    the reference graph of the other segments."""
    return Registry(
        traits=dict(TraitDefinition.objects.filter(is_builtin=False).values_list("key", "type")),
        events=set(EventDefinition.objects.values_list("name", flat=True)),
        surveys=dict(Survey.objects.values_list("key", "kind")),
        segments={key: set(refs) for key, refs in Segment.objects.exclude(key=self_key or "")
                  .values_list("key", "references")},
        self_key=self_key,
    )


def open_memberships(*, segment: Segment) -> QuerySet[Membership]:
    return Membership.objects.filter(segment=segment, exited_at__isnull=True)


def segment_members(*, segment: Segment, at: datetime | None = None) -> QuerySet[Customer]:
    """Customers in the segment now, or at a past moment `at` (from the history)."""
    if at is None:
        stays = Membership.objects.filter(segment=segment, exited_at__isnull=True)
    else:
        stays = Membership.objects.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at), segment=segment,
                                          entered_at__lte=at)
    return Customer.objects.filter(id__in=stays.values("customer_id"))


def segment_changes(*, segment: Segment, since: datetime | None = None, after_id: int | None = None):
    changes = MembershipChange.objects.filter(segment=segment)
    if since is not None:
        changes = changes.filter(at__gte=since)
    if after_id is not None:
        changes = changes.filter(id__gt=after_id)
    return changes.order_by("id")


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
