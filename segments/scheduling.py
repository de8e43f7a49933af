"""When segments are evaluated: on save, on schedule (each segment's refresh interval, which
also catches time-relative rules drifting), incrementally when new data touches customers,
and after a referenced segment changed — always referenced segments first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q

from common.clock import Clock
from customers.touch import Touch
from segments import engine
from segments.models import Segment, SegmentEvaluation
from segments.rules.nodes import (
    ConsentCondition, EventCondition, Registry, RuleError, SequenceCondition, SurveyCondition, TraitCondition,
)
from segments.rules.vocabulary import ANY_EVENT
from segments.selectors.rules import dependents_of, in_dependency_order, rule_context, rule_registry

# An evaluation "running" for longer than its task's hard time limit died with its worker.
STUCK_AFTER = timedelta(minutes=35)


def retry_delay(retries: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min … for a failed evaluation's task retries."""
    return timedelta(seconds=30 * 2 ** retries)


def evaluate_with_dependents(*, segment_id: int, now: datetime, trigger: str, clock: Clock,
                             customer_ids: list[int] | None = None, evaluation_id: int | None = None):
    """Evaluate one segment; when its membership changed, the segments that reference it
    follow (for the same customers when incremental)."""
    if not Segment.objects.filter(pk=segment_id).exists():
        return None  # deleted since the task was queued
    evaluation = engine.evaluate(segment_id=segment_id, now=now, trigger=trigger, clock=clock,
                                 customer_ids=customer_ids, evaluation_id=evaluation_id)
    if evaluation.status == SegmentEvaluation.Status.SUCCEEDED and (evaluation.entered or evaluation.exited):
        _follow_dependents({Segment.objects.get(pk=segment_id).key}, now=now, clock=clock, customer_ids=customer_ids)
    return evaluation


def _follow_dependents(changed: set[str], *, now: datetime, clock: Clock, customer_ids: list[int] | None,
                       seen: set[str] | None = None) -> None:
    seen = set() if seen is None else seen
    for segment in in_dependency_order(dependents_of(changed)):
        if segment.key in seen or segment.status != Segment.Status.ACTIVE:
            continue
        seen.add(segment.key)
        evaluation = engine.evaluate(segment_id=segment.pk, now=now, trigger=SegmentEvaluation.Trigger.DEPENDENCY,
                                     clock=clock, customer_ids=customer_ids)
        if evaluation.status == SegmentEvaluation.Status.SUCCEEDED and (evaluation.entered or evaluation.exited):
            _follow_dependents({segment.key}, now=now, clock=clock, customer_ids=customer_ids, seen=seen)


def recover_stuck(*, now: datetime, clock: Clock) -> int:
    """Evaluations whose worker died mid-run: marked failed, their segments due again."""
    stuck = SegmentEvaluation.objects.filter(status=SegmentEvaluation.Status.RUNNING,
                                             started_at__lt=clock() - STUCK_AFTER)
    segment_ids = list(stuck.values_list("segment_id", flat=True))
    count = stuck.update(status=SegmentEvaluation.Status.FAILED, finished_at=clock(),
                         error="Timed out: the worker running it stopped; rescheduled.")
    Segment.objects.filter(pk__in=segment_ids).update(next_evaluation_at=now)
    return count


def _consecutive_failures(segment: Segment) -> int:
    failures = 0
    for status in SegmentEvaluation.objects.filter(segment=segment, incremental=False).exclude(
            status=SegmentEvaluation.Status.SKIPPED).values_list("status", flat=True)[:10]:
        if status != SegmentEvaluation.Status.FAILED:
            break
        failures += 1
    return failures


@dataclass(frozen=True)
class DueSlice:
    evaluated: int  # due segments evaluated successfully
    left: int  # due segments not started within the budget


def evaluate_due(*, now: datetime, clock: Clock, budget: timedelta | None = None) -> DueSlice:
    """Every active dynamic segment whose refresh time has come, referenced ones first.
    A failure does not stop the others; the failed segment is retried with backoff.
    With a `budget`, no evaluation starts once it has passed on `clock` (at least one
    does): the caller queues the rest (segments/due_queue.py)."""
    recover_stuck(now=now, clock=clock)
    due = in_dependency_order(list(Segment.objects.filter(kind=Segment.Kind.DYNAMIC, status=Segment.Status.ACTIVE)
                                   .filter(Q(next_evaluation_at__isnull=True) | Q(next_evaluation_at__lte=now))))
    started, done = clock(), 0
    for position, segment in enumerate(due):
        if position and budget is not None and clock() - started >= budget:
            return DueSlice(evaluated=done, left=len(due) - position)
        evaluation = engine.evaluate(segment_id=segment.pk, now=now, trigger=SegmentEvaluation.Trigger.SCHEDULE,
                                     clock=clock)
        if evaluation.status == SegmentEvaluation.Status.FAILED:
            Segment.objects.filter(pk=segment.pk).update(
                next_evaluation_at=now + engine.backoff(_consecutive_failures(segment), segment.refresh_interval))
        else:
            done += 1
    return DueSlice(evaluated=done, left=0)


@dataclass(frozen=True)
class Needs:
    """What a segment's membership depends on that new data can bring."""

    event_names: frozenset[str] = frozenset()
    trait_keys: frozenset[str] = frozenset()
    surveys: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()


def sensitivity(segment: Segment, registry: Registry | None = None) -> Needs:
    """What arriving can change this segment's membership (`registry`: the tenant's, read
    once for many segments)."""
    group = rule_context(definition=segment.definition, self_key=segment.key,
                         registry=registry.for_segment(segment.key) if registry is not None else None).group
    events, traits, surveys, channels = set(), set(), set(), set()
    for node in group.walk():
        if isinstance(node, EventCondition):
            events.add(node.event)
            if node.when is not None:  # local time: a new time zone moves the customer's events
                traits.add("timezone")
        elif isinstance(node, SequenceCondition):
            events.update(step.event for step in node.steps)
        elif isinstance(node, TraitCondition):
            traits.add(node.custom_key or node.field)
        elif isinstance(node, SurveyCondition):
            surveys.add(node.survey)
        elif isinstance(node, ConsentCondition):
            channels.add(node.channel)
    # An event changes only conditions on its own name, and the customer's last_seen_at
    # (which `customers_to_check` matches against every event). Re-checking every event
    # segment for every batch made the worker fall behind sustained ingest (bench/freshness.py).
    return Needs(frozenset(events), frozenset(traits), frozenset(surveys), frozenset(channels))


def customers_to_check(needs: Needs, touch: Touch) -> set[int]:
    """The customers whose membership the touch can have changed: those that data the
    segment depends on reached. A segment on purchases re-checks the batch's buyers, not
    everyone who logged in. A merge's survivor is checked by every segment."""
    reached = set(touch.merged)
    for names, by_name in ((needs.event_names, touch.events), (needs.trait_keys, touch.traits),
                           (needs.surveys, touch.surveys), (needs.channels, touch.channels)):
        for name in names & by_name.keys():
            reached |= by_name[name]
    if "last_seen_at" in needs.trait_keys or ANY_EVENT in needs.event_names:  # every event moves these
        for ids in touch.events.values():
            reached |= ids
    return reached


def checks_wanted() -> bool:
    """Whether new customer data can change any membership: the tenant has an active
    dynamic segment. Asked before a re-check is queued at all."""
    with connection.cursor() as cursor:  # after every ingested batch: a plain statement, not the ORM's
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {Segment._meta.db_table} WHERE kind = %s AND status = %s)",
                       [Segment.Kind.DYNAMIC.value, Segment.Status.ACTIVE.value])
        return cursor.fetchone()[0]


def evaluate_touched(*, touch: Touch, now: datetime, clock: Clock) -> int:
    """Re-check, per dynamic segment new data can change, the customers that data reached
    (and, through each segment, the segments that reference it)."""
    affected, checks, registry = [], {}, rule_registry()
    for segment in Segment.objects.filter(kind=Segment.Kind.DYNAMIC, status=Segment.Status.ACTIVE):
        try:
            needs = sensitivity(segment, registry)
        except RuleError:  # a definition the registry no longer accepts: the schedule reports it
            continue
        customers = customers_to_check(needs, touch)
        if customers:
            affected.append(segment)
            checks[segment.pk] = sorted(customers)
    for segment in in_dependency_order(affected):
        evaluate_with_dependents(segment_id=segment.pk, now=now, trigger=SegmentEvaluation.Trigger.INGEST,
                                 clock=clock, customer_ids=checks[segment.pk])
    return len(affected)
