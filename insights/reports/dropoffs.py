"""A segment of a funnel's drop-offs: those who reached step k - 1 and not step k, as a
dynamic segment whose rule is the funnel's own sequence (insights/reports/funnel.py), so
it keeps counting who drops there as the window moves."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from audit.services import audit_record
from common.actors import Actor
from common.errors import DomainError
from insights.reports.funnel import FunnelQuery, dropoff_definition, dropoff_step_problem
from segments.models import Segment
from segments.services import segment_create
from tenants.permissions import ensure_permitted


@transaction.atomic
def dropoff_segment_create(*, actor: Actor, query: FunnelQuery, step: int, key: str, name: str | None,
                           now: datetime) -> Segment:
    ensure_permitted(actor, "segments.edit")
    problem = dropoff_step_problem(query, step)
    if problem:
        raise DomainError(problems=[problem])
    steps = query.sequence.steps
    reached, missed = steps[step - 2].event, steps[step - 1].event
    window = query.definition["window"]
    period = f"the last {window['last']}" if "last" in window else \
        f"{window.get('from', 'the start')} to {window.get('to', 'now')}"
    segment, _ = segment_create(
        actor=actor, key=key, name=name or f"Dropped before {missed}"[:200], definition=dropoff_definition(query, step),
        description=f"Did {' → '.join(s.event for s in steps[:step - 1])} within {query.definition['within']} "
                    f"but not {missed} after {reached}, in {period}"
                    f"{f' (members of {query.segment})' if query.segment else ''}.",
        note=f"Drop-offs at step {step} of a funnel", now=now)
    audit_record(actor=actor, action="insights.funnel_dropoff_segment", target=segment, target_label=segment.key,
                 changes={"step": step, "steps": [s.event for s in steps], "segment": query.segment})
    return segment
