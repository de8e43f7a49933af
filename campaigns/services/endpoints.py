"""Writes to webhook endpoints: a segment's entries and exits posted to a URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from audit.services import audit_record
from campaigns import ssrf, webhooks
from campaigns.models import WebhookEndpoint
from campaigns.services.input import actor_user_id, segment_problems
from common.actors import Actor
from common.errors import CampaignCode, Code, DomainError, Problem
from segments.models import MembershipChange, Segment
from tenants.permissions import ensure_permitted


def _webhook_clean(actor: Actor, *, url: Any, events: Any, segment_id: Any, check_segment: bool,
                   check_url: bool = True) -> tuple[Segment | None, list]:
    problems, segment = [], None
    if check_segment:
        segment, problems = segment_problems(actor, segment_id)
    try:
        if check_url:
            ssrf.check_url(url)
    except ssrf.UnsafeURL as error:
        problems.append(Problem("url", error.code, error.message))
    if not isinstance(events, list) or not events or not set(events) <= set(WebhookEndpoint.Event.values):
        problems.append(Problem("events", Code.INVALID_CHOICE, "Choose entered, exited or both."))
    return segment, problems


@transaction.atomic
def webhook_endpoint_create(*, actor: Actor, segment_id: int, url: str, events: list[str]) -> WebhookEndpoint:
    """Subscribe a URL to a segment's changes from now on (the cursor starts at the outbox's end)."""
    ensure_permitted(actor, "campaigns.edit")
    segment, problems = _webhook_clean(actor, url=url, events=events, segment_id=segment_id, check_segment=True)
    if problems:
        raise DomainError(problems=problems)
    cursor = MembershipChange.objects.filter(segment=segment).aggregate(m=Max("id"))["m"] or 0
    endpoint = WebhookEndpoint.objects.create(segment=segment, segment_label=segment.name, url=url,
                                              events=sorted(set(events)), secret=webhooks.secret_new(),
                                              cursor=cursor, owner_id=actor_user_id(actor))
    audit_record(actor=actor, action="webhook.created", target=endpoint)
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, actor: Actor, endpoint: WebhookEndpoint, url: str | None = None,
                            events: list[str] | None = None, active: bool | None = None) -> WebhookEndpoint:
    ensure_permitted(actor, "campaigns.edit")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    _, problems = _webhook_clean(actor, url=url if url is not None else endpoint.url,
                                 events=events if events is not None else endpoint.events, segment_id=None,
                                 check_segment=False, check_url=url is not None)
    # The stored URL is checked again at every delivery (campaigns.webhooks.attempt), so an
    # endpoint whose URL the guard now refuses can still be renamed or switched off.
    if active and endpoint.segment_id is None:
        problems.append(Problem("active", CampaignCode.SEGMENT_DELETED, "Its segment was deleted."))
    if problems:
        raise DomainError(problems=problems)
    endpoint.url = url if url is not None else endpoint.url
    endpoint.events = sorted(set(events)) if events is not None else endpoint.events
    if active is not None:
        endpoint.active, endpoint.disabled_reason = active, "" if active else "Disabled by hand."
    endpoint.save()
    audit_record(actor=actor, action="webhook.updated", target=endpoint)
    return endpoint


def webhook_send_test(*, actor: Actor, endpoint: WebhookEndpoint, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.edit")
    return webhooks.send_test(endpoint=endpoint, now=now)
