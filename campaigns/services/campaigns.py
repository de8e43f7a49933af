"""Writes to campaigns: create, update, preview, launch, pause, cancel, results, and the
pause of campaigns whose segment was deleted (house rule 1)."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from audit.services import audit_record
from campaigns import personalisation, selectors, sending
from campaigns.models import Campaign, Play, WebhookEndpoint
from campaigns.services.input import actor_user_id, clean_decimal, clean_positive_int, clean_text, segment_problems
from campaigns.services.schedules import next_occasion, schedule_clean
from common.actors import Actor
from common.errors import CampaignCode, Code, Conflict, DomainError, Problem
from common.fields import UNSET, Unset, given
from customers.models import Customer
from ops.tasking import send_to_tenant
from segments.models import MembershipChange
from segments.selectors.members import segment_members
from tenants.permissions import ensure_permitted

CHANNEL_FIELDS = {Campaign.Channel.EMAIL: ("subject", "body"), Campaign.Channel.IN_APP: ("title", "body")}
SENDABLE = {Campaign.Channel.EMAIL}  # the channels campaigns.sending delivers (in-app is pulled)
MAX_VARIANTS = 5

CAMPAIGN_FIELDS = ("name", "play_id", "segment_id", "channel", "schedule", "content", "variants", "holdout_percent",
                   "cap_max_sends", "cap_days", "goal_event", "goal_days")
LOCKED_AFTER_LAUNCH = {"segment_id", "channel", "holdout_percent", "variants", "schedule"}


def _variants_clean(variants: Any, channel: str, content: dict) -> list[Problem]:
    if variants in (None, []):
        return []
    if not isinstance(variants, list) or len(variants) > MAX_VARIANTS:
        return [Problem("variants", Code.INVALID_VALUE, f"A list of up to {MAX_VARIANTS} variants.")]
    problems, keys = [], set()
    for index, variant in enumerate(variants):
        path = f"variants[{index}]"
        if not isinstance(variant, dict):
            problems.append(Problem(path, Code.INVALID_TYPE, "A variant is an object with key, weight and content."))
            continue
        key, weight = variant.get("key"), variant.get("weight")
        if not isinstance(key, str) or not key.strip() or len(key) > 64 or key in keys:
            problems.append(Problem(f"{path}.key", Code.INVALID_VALUE, "A unique key of at most 64 characters."))
        keys.add(key)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
            problems.append(Problem(f"{path}.weight", Code.INVALID_RANGE, "A weight above 0, at most 100."))
        overrides = variant.get("content") or {}
        if not isinstance(overrides, dict):
            problems.append(Problem(f"{path}.content", Code.INVALID_TYPE, "Content overrides are an object."))
            continue
        fields = tuple(f for f in CHANNEL_FIELDS.get(channel, ()) if f in overrides)
        problems += _content_render_problems({**content, **overrides}, fields, prefix=f"{path}.content")
    return problems


def _content_render_problems(content: dict, fields: tuple[str, ...], *, prefix: str) -> list[Problem]:
    """Compile, then render for the sample customer (a filter can fail only at render time)."""
    problems = personalisation.compile_content(content, fields, prefix=prefix)
    if problems:
        return problems
    data = personalisation.SAMPLE | {"unsubscribe_url": "https://example.com/unsubscribe/sample/"}
    for field in fields:
        try:
            personalisation.render(content[field], data, html=content.get("format") == "html", path=f"{prefix}.{field}")
        except DomainError as error:
            problems += error.problems
    return problems


def _campaign_clean(actor: Actor, data: dict, *, current: Campaign | None) -> tuple[dict, list[Problem]]:
    problems: list[Problem] = []
    if current is not None and current.launched_at is not None:
        problems += [Problem(k, CampaignCode.LOCKED_AFTER_LAUNCH,
                             "This cannot change once the campaign has been launched.")
                     for k in sorted(LOCKED_AFTER_LAUNCH & set(data))
                     if data[k] != (getattr(current, k) if k != "holdout_percent" else current.holdout_percent)]
    if current is not None and current.status in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED):
        problems.append(Problem("", CampaignCode.FINISHED, "A completed or cancelled campaign cannot change."))
    merged = {f: getattr(current, f) for f in CAMPAIGN_FIELDS} if current else {
        "content": {}, "variants": [], "holdout_percent": 0, "goal_event": "", "goal_days": 7}
    merged |= {k: v for k, v in data.items() if k in CAMPAIGN_FIELDS}
    problems += clean_text(merged.get("name"), "name", required=True, limit=200)
    channel = merged.get("channel")
    if channel not in Campaign.Channel.values:
        problems.append(Problem("channel", Code.INVALID_CHOICE, f"One of {', '.join(Campaign.Channel.values)}."))
    if "segment_id" in data or current is None:
        segment, found = segment_problems(actor, merged.get("segment_id"))
        problems += found
        if segment is not None:
            merged["segment_label"] = segment.name
    play_id = merged.get("play_id")
    # An id that is not an integer (a tampered form field) is unknown too, not a query error.
    if play_id is not None and (isinstance(play_id, bool) or not isinstance(play_id, int)
                                or not Play.objects.filter(pk=play_id).exists()):
        problems.append(Problem("play_id", CampaignCode.UNKNOWN_PLAY, "No such play in this workspace."))
    schedule, schedule_problems = schedule_clean(merged.get("schedule"), channel=channel)
    problems += schedule_problems
    merged["schedule"] = schedule
    content = merged.get("content")
    if not isinstance(content, dict):
        problems.append(Problem("content", Code.INVALID_TYPE, "Content is an object."))
        content = {}
    if content.get("format", "text") not in ("text", "html"):
        problems.append(Problem("content.format", Code.INVALID_CHOICE, "text or html."))
    if channel in CHANNEL_FIELDS:
        problems += _content_render_problems(content, CHANNEL_FIELDS[channel], prefix="content")
    if channel == Campaign.Channel.IN_APP and content.get("cta_url"):
        if not str(content["cta_url"]).startswith(("https://", "http://", "/")):
            problems.append(Problem("content.cta_url", CampaignCode.INVALID_URL,
                                    "A link starting with https://, http:// or /."))
    if channel == Campaign.Channel.WEBHOOK:
        endpoint = content.get("endpoint_id")
        if isinstance(endpoint, bool) or not isinstance(endpoint, int) or not WebhookEndpoint.objects.filter(
                pk=endpoint, segment_id=merged.get("segment_id")).exists():
            problems.append(Problem("content.endpoint_id", CampaignCode.UNKNOWN_ENDPOINT,
                                    "Choose a webhook endpoint subscribed to this campaign's segment."))
    problems += _variants_clean(merged.get("variants"), channel, content)
    merged["holdout_percent"] = clean_decimal(merged.get("holdout_percent"), "holdout_percent", problems,
                                         low=Decimal(0), high=Decimal(50))
    problems += clean_positive_int(merged.get("cap_max_sends"), "cap_max_sends", high=1000)
    problems += clean_positive_int(merged.get("cap_days"), "cap_days")
    if (merged.get("cap_max_sends") is None) != (merged.get("cap_days") is None):
        problems.append(Problem("cap_days", CampaignCode.INCOMPLETE_CAP,
                                "A frequency cap needs both a count and a number of days."))
    problems += clean_text(merged.get("goal_event") or "", "goal_event", required=False, limit=200)
    problems += clean_positive_int(merged.get("goal_days"), "goal_days", high=365)
    merged["content"], merged["channel"] = content, channel
    return merged, problems


def _campaign_attributes(data: dict) -> dict:
    out = {k: data[k] for k in CAMPAIGN_FIELDS if k in data}
    if "schedule" in data and data["schedule"]:
        out["schedule_kind"] = data["schedule"]["kind"]
    if "segment_label" in data:
        out["segment_label"] = data["segment_label"]
    return out


@transaction.atomic
def campaign_create(*, actor: Actor, name: str, segment_id: int, channel: str, schedule: dict,
                    content: dict | None = None, play_id: int | None | Unset = UNSET, variants: Any = UNSET,
                    holdout_percent: Any = UNSET, cap_max_sends: int | None | Unset = UNSET,
                    cap_days: int | None | Unset = UNSET, goal_event: str | Unset = UNSET,
                    goal_days: int | Unset = UNSET) -> Campaign:
    ensure_permitted(actor, "campaigns.edit")
    fields = given(play_id=play_id, variants=variants, holdout_percent=holdout_percent, cap_max_sends=cap_max_sends,
                   cap_days=cap_days, goal_event=goal_event, goal_days=goal_days)
    data, problems = _campaign_clean(actor, {"name": name, "segment_id": segment_id, "channel": channel,
                                             "schedule": schedule, "content": content or {}, **fields}, current=None)
    if problems:
        raise DomainError(problems=problems)
    attributes = _campaign_attributes(data)
    attributes["name"] = attributes["name"].strip()
    campaign = Campaign.objects.create(salt=secrets.token_hex(8), owner_id=actor_user_id(actor),
                                       **{k: v for k, v in attributes.items() if v is not None})
    audit_record(actor=actor, action="campaign.created", target=campaign)
    return campaign


@transaction.atomic
def campaign_update(*, actor: Actor, campaign: Campaign, name: str | Unset = UNSET, play_id: int | None | Unset = UNSET,
                    segment_id: int | Unset = UNSET, channel: str | Unset = UNSET, schedule: Any = UNSET,
                    content: Any = UNSET, variants: Any = UNSET, holdout_percent: Any = UNSET,
                    cap_max_sends: int | None | Unset = UNSET, cap_days: int | None | Unset = UNSET,
                    goal_event: str | Unset = UNSET, goal_days: int | Unset = UNSET) -> Campaign:
    """Change the fields passed; some are locked once the campaign has been launched."""
    ensure_permitted(actor, "campaigns.edit")
    fields = given(name=name, play_id=play_id, segment_id=segment_id, channel=channel, schedule=schedule,
                   content=content, variants=variants, holdout_percent=holdout_percent, cap_max_sends=cap_max_sends,
                   cap_days=cap_days, goal_event=goal_event, goal_days=goal_days)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    data, problems = _campaign_clean(actor, fields, current=campaign)
    if problems:
        raise DomainError(problems=problems)
    for key, value in _campaign_attributes({**{k: data[k] for k in fields if k in CAMPAIGN_FIELDS},
                                            **({"segment_label": data["segment_label"]} if "segment_label" in data
                                               else {}),
                                            **({"schedule": data["schedule"]} if "schedule" in fields else {})}).items():
        setattr(campaign, key, value.strip() if key == "name" else value)
    campaign.save()
    audit_record(actor=actor, action="campaign.updated", target=campaign, changes={"fields": sorted(fields)})
    return campaign


def campaign_preview(*, actor: Actor, campaign: Campaign, customer: Customer | None = None, variant: str = "") -> dict:
    """The rendered content for one customer (a segment member by default, else a sample)."""
    ensure_permitted(actor, "campaigns.view")
    if customer is None and campaign.segment_id:
        customer = segment_members(segment=campaign.segment).order_by("id").first()
    data = personalisation.customer_context(customer) if customer is not None else dict(personalisation.SAMPLE)
    if not actor.has("customers.view_pii"):
        data = dict(personalisation.SAMPLE) | {"country": data.get("country", ""), "plan": data.get("plan", "")}
    data["unsubscribe_url"] = "https://example.com/unsubscribe/preview/"
    content = sending._content_for(campaign, variant)
    if campaign.channel == Campaign.Channel.EMAIL:
        return personalisation.render_email(content, data)
    if campaign.channel == Campaign.Channel.IN_APP:
        return personalisation.render_in_app(content, data)
    return {}


def _transition(actor: Actor, campaign: Campaign, *, allowed: set[str], action: str) -> Campaign:
    ensure_permitted(actor, "campaigns.launch")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed:
        raise Conflict.single(path="status", code=CampaignCode.INVALID_TRANSITION,
                              message=f"A {campaign.status} campaign cannot be {action}.")
    return campaign


@transaction.atomic
def campaign_launch(*, actor: Actor, campaign: Campaign, now: datetime) -> Campaign:
    """Draft/paused → scheduled (a future slot) or running. On-entry campaigns start
    with the outbox's current end as their cursor: entries from now on, not the backlog."""
    campaign = _transition(actor, campaign, allowed={Campaign.Status.DRAFT, Campaign.Status.PAUSED}, action="launched")
    if campaign.segment_id is None:
        raise Conflict.single(path="segment_id", code=CampaignCode.SEGMENT_DELETED,
                              message="The campaign's segment was deleted: choose another segment in a new campaign.")
    before = campaign.status
    if campaign.launched_at is None:
        campaign.launched_at = now
        if campaign.schedule_kind == Campaign.ScheduleKind.ON_ENTRY:
            campaign.entry_cursor = (MembershipChange.objects.filter(segment_id=campaign.segment_id)
                                     .aggregate(m=Max("id"))["m"] or 0)
    if campaign.schedule_kind == Campaign.ScheduleKind.ON_ENTRY:
        campaign.status, campaign.next_run_at = Campaign.Status.RUNNING, None
    else:
        # A one-off whose time has passed (or that was paused mid-send) goes at the next
        # tick; its sends are keyed by occasion, so resuming never repeats a recipient.
        first = next_occasion(campaign.schedule, after=now)
        if first is None:
            raise Conflict.single(path="schedule", code=CampaignCode.NO_FUTURE_OCCASION,
                                  message="The schedule has no occasion left.")
        campaign.next_run_at = first
        campaign.status = Campaign.Status.SCHEDULED
    campaign.pause_reason = ""
    campaign.save()
    audit_record(actor=actor, action="campaign.launched", target=campaign,
                 changes={"status": [before, campaign.status]})
    _dispatch_after_commit()
    return campaign


@transaction.atomic
def campaign_pause(*, actor: Actor, campaign: Campaign, reason: str = "") -> Campaign:
    campaign = _transition(actor, campaign, allowed={Campaign.Status.SCHEDULED, Campaign.Status.RUNNING},
                           action="paused")
    before = campaign.status
    campaign.status, campaign.pause_reason = Campaign.Status.PAUSED, (reason or "Paused by hand.")[:300]
    campaign.save()
    audit_record(actor=actor, action="campaign.paused", target=campaign, changes={"status": [before, "paused"]})
    return campaign


@transaction.atomic
def campaign_cancel(*, actor: Actor, campaign: Campaign, now: datetime) -> Campaign:
    campaign = _transition(actor, campaign, allowed={Campaign.Status.DRAFT, Campaign.Status.SCHEDULED,
                                                     Campaign.Status.RUNNING, Campaign.Status.PAUSED},
                           action="cancelled")
    before = campaign.status
    campaign.status, campaign.finished_at, campaign.next_run_at = Campaign.Status.CANCELLED, now, None
    campaign.save()
    audit_record(actor=actor, action="campaign.cancelled", target=campaign, changes={"status": [before, "cancelled"]})
    return campaign


def campaign_results(*, actor: Actor, campaign: Campaign, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.view")
    return selectors.campaign_results(campaign=campaign, now=now)


def _dispatch_after_commit() -> None:
    schema = connection.schema_name
    transaction.on_commit(lambda: send_to_tenant("campaigns.tick", schema_name=schema))


@transaction.atomic
def campaigns_segment_gone(*, now: datetime) -> int:
    """Pause live campaigns whose segment was deleted (segment FK set to NULL), with a
    reason naming it; disable webhook endpoints likewise. Returns campaigns paused.

    Segments are deleted by segments.services.segment_delete, which knows nothing of
    campaigns: the campaigns tick calls this every minute, before it sends anything."""
    live = Campaign.objects.select_for_update().filter(
        segment__isnull=True, status__in=(Campaign.Status.SCHEDULED, Campaign.Status.RUNNING))
    paused = 0
    for campaign in live:
        before = campaign.status
        campaign.status, campaign.next_run_at = Campaign.Status.PAUSED, None
        campaign.pause_reason = (f"Paused: its segment “{campaign.segment_label or 'unknown'}” was deleted. "
                                 "Nothing more is sent; results so far are kept.")[:300]
        campaign.save(update_fields=["status", "next_run_at", "pause_reason", "updated_at"])
        audit_record(actor=None, action="campaign.paused", target=campaign,
                     changes={"status": [before, "paused"], "reason": "segment_deleted"})
        paused += 1
    WebhookEndpoint.objects.filter(segment__isnull=True, active=True).update(
        active=False, updated_at=now, disabled_reason="Its segment was deleted.")
    return paused
