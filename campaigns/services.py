"""Writes to plays, campaigns, webhook endpoints, and the unsubscribe link (house rule 1).

Every service takes keyword arguments, checks the actor's permission again
(tenants.access.ensure_permitted), collects every problem into one DomainError with
paths, and is atomic. Interfaces (views, API, tasks) parse input and call one of these.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from audit.services import audit_record
from campaigns import sending, ssrf, templates, webhooks
from campaigns.audience import audience_csv
from campaigns.models import Campaign, Play, WebhookEndpoint
from campaigns.plays import kpi
from campaigns.sending import assign_members, unsubscribe_read
from common.errors import Conflict, DomainError, Problem
from customers.feedback import ConsentChangeIn, consents_record
from customers.models import Consent, Customer
from ops.tasking import send_to_tenant
from segments.models import MembershipChange, Segment
from segments.selectors import segment_members
from tenants.access import department_problems, ensure_permitted

EVERY = ("daily", "weekly", "hours")
CHANNEL_FIELDS = {Campaign.Channel.EMAIL: ("subject", "body"), Campaign.Channel.IN_APP: ("title", "body")}
SENDABLE = {Campaign.Channel.EMAIL}  # the channels campaigns.sending delivers (in-app is pulled)
MAX_VARIANTS = 5

# ---------------------------------------------------------------------------- helpers


def _user_id(actor) -> int | None:
    return getattr(actor, "user_id", None)


def _segment_problems(actor, segment_id: Any, path: str = "segment_id") -> tuple[Segment | None, list[Problem]]:
    """The segment, if it exists in this workspace and the actor may see segments."""
    if segment_id is None:
        return None, [Problem(path, "required", "Choose a segment.")]
    if isinstance(segment_id, bool) or not isinstance(segment_id, int):
        return None, [Problem(path, "invalid_type", "A segment is named by its id.")]
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None or actor is None or not actor.has("segments.view"):
        # Same answer for "absent" and "not yours to see": ids reveal nothing.
        return None, [Problem(path, "unknown_segment", "No such segment in this workspace.")]
    return segment, []


def _text(value: Any, path: str, *, required: bool, limit: int) -> list[Problem]:
    if value is None or value == "":
        return [Problem(path, "required", "This is required.")] if required else []
    if not isinstance(value, str) or len(value) > limit:
        return [Problem(path, "invalid_value", f"Text of at most {limit:,} characters.")]
    return []


def _positive_int(value: Any, path: str, *, low: int = 1, high: int = 3650) -> list[Problem]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return [Problem(path, "invalid_range", f"A whole number from {low} to {high}.")]
    return []


def _decimal(value: Any, path: str, problems: list[Problem], *, low=None, high=None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite() or (low is not None and number < low) or \
            (high is not None and number > high):
        bounds = f" from {low} to {high}" if low is not None and high is not None else ""
        problems.append(Problem(path, "invalid_range", f"A number{bounds}."))
        return None
    return number


def _date(value: Any, path: str, problems: list[Problem]):
    from datetime import date

    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(Problem(path, "invalid_date", "A date as YYYY-MM-DD."))
        return None


def _aware(value: Any, path: str, problems: list[Problem]) -> datetime | None:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(Problem(path, "invalid_datetime", "A date and time in ISO 8601, with its offset."))
        return None
    if moment.tzinfo is None:
        problems.append(Problem(path, "naive_datetime", "Give the time zone offset (e.g. 2026-06-01T09:00:00+00:00)."))
        return None
    return moment


# ---------------------------------------------------------------------------- plays

PLAY_FIELDS = ("name", "segment_id", "department_id", "tactic", "tactic_type", "kpi", "kpi_event", "kpi_days",
               "target", "spend", "status", "starts_on", "ends_on")


def _play_clean(actor, data: dict, *, current: Play | None) -> tuple[dict, list[Problem]]:
    problems = [Problem(k, "unknown_field", f"“{k}” is not a field of a play.") for k in sorted(set(data) - set(PLAY_FIELDS))]
    merged = {f: getattr(current, f) for f in PLAY_FIELDS} if current else {}
    merged |= {k: v for k, v in data.items() if k in PLAY_FIELDS}
    problems += _text(merged.get("name"), "name", required=True, limit=200)
    problems += _text(merged.get("tactic", ""), "tactic", required=False, limit=10_000)
    if merged.get("tactic_type") not in Play.TacticType.values:
        problems.append(Problem("tactic_type", "invalid_choice", f"One of {', '.join(Play.TacticType.values)}."))
    if merged.get("kpi") not in Play.Kpi.values:
        problems.append(Problem("kpi", "invalid_choice", f"One of {', '.join(Play.Kpi.values)}."))
    if merged.get("status", Play.Status.PLANNED) not in Play.Status.values:
        problems.append(Problem("status", "invalid_choice", f"One of {', '.join(Play.Status.values)}."))
    segment = None
    if "segment_id" in data or current is None:
        segment, segment_problems = _segment_problems(actor, merged.get("segment_id"))
        problems += segment_problems
    if "department_id" in data:
        problems += department_problems(actor, data["department_id"])
    event_kpis = {Play.Kpi.FEATURE_ADOPTION, Play.Kpi.LEAD_TO_OPPORTUNITY, Play.Kpi.CUSTOM}
    if merged.get("kpi") in event_kpis:
        problems += _text(merged.get("kpi_event"), "kpi_event", required=True, limit=200)
    if merged.get("kpi") == Play.Kpi.CUSTOM and merged.get("kpi_days") is None:
        problems.append(Problem("kpi_days", "required", "A custom KPI counts an event within N days: give N."))
    problems += _positive_int(merged.get("kpi_days"), "kpi_days")
    merged["target"] = _decimal(merged.get("target"), "target", problems, low=Decimal(0))
    merged["spend"] = _decimal(merged.get("spend"), "spend", problems, low=Decimal(0))
    if merged.get("kpi") == Play.Kpi.CAC and merged.get("spend") is None and "spend" not in [p.path for p in problems]:
        problems.append(Problem("spend", "required", "CAC is spend ÷ customers acquired: enter the spend."))
    merged["starts_on"] = _date(merged.get("starts_on"), "starts_on", problems)
    merged["ends_on"] = _date(merged.get("ends_on"), "ends_on", problems)
    if merged["starts_on"] and merged["ends_on"] and merged["ends_on"] < merged["starts_on"]:
        problems.append(Problem("ends_on", "before_start", "A play ends on or after its start."))
    if segment is not None:
        merged["segment_label"] = segment.name
    return merged, problems


@transaction.atomic
def play_create(*, actor, name: str, segment_id: int, tactic_type: str, kpi: str, **fields) -> Play:
    ensure_permitted(actor, "campaigns.edit")
    data, problems = _play_clean(actor, {"name": name, "segment_id": segment_id, "tactic_type": tactic_type,
                                         "kpi": kpi, **fields}, current=None)
    if problems:
        raise DomainError(problems=problems)
    play = Play.objects.create(owner_id=_user_id(actor), name=data["name"].strip(),
                               **{k: v for k, v in data.items() if k != "name" and v is not None})
    audit_record(actor=actor, action="play.created", target=play)
    return play


@transaction.atomic
def play_update(*, actor, play: Play, **fields) -> Play:
    ensure_permitted(actor, "campaigns.edit")
    play = Play.objects.select_for_update().get(pk=play.pk)
    data, problems = _play_clean(actor, fields, current=play)
    if problems:
        raise DomainError(problems=problems)
    for key in set(fields) | ({"segment_label"} if "segment_id" in fields else set()):
        setattr(play, key, data[key].strip() if key == "name" else data[key])
    play.save()
    audit_record(actor=actor, action="play.updated", target=play, changes={"fields": sorted(fields)})
    return play


def play_kpi(*, actor, play: Play, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.view")
    return kpi.play_kpi_actual(play=play, now=now)


def play_results(*, actor, play: Play, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.view")
    return kpi.play_results(play=play, now=now)


# ---------------------------------------------------------------------------- schedules


def schedule_clean(schedule: Any, *, channel: str) -> tuple[dict, list[Problem]]:
    """A normalised schedule, or problems under `schedule.`."""
    if not isinstance(schedule, dict):
        return {}, [Problem("schedule", "invalid_type", "A schedule is an object with a kind.")]
    kind, problems = schedule.get("kind"), []
    if kind == Campaign.ScheduleKind.ONCE:
        at = _aware(schedule.get("at"), "schedule.at", problems)
        return ({"kind": kind, "at": at.isoformat()} if at else {}), problems
    if kind == Campaign.ScheduleKind.ON_ENTRY:
        if channel not in (Campaign.Channel.EMAIL, Campaign.Channel.IN_APP):
            problems.append(Problem("schedule.kind", "invalid_for_channel",
                                    "Only email and in-app campaigns can fire when a customer enters the segment."))
        return {"kind": kind}, problems
    if kind != Campaign.ScheduleKind.RECURRING:
        return {}, [Problem("schedule.kind", "invalid_choice", "once, recurring or on_entry.")]
    every = schedule.get("every")
    out: dict[str, Any] = {"kind": kind, "every": every}
    if every not in EVERY:
        problems.append(Problem("schedule.every", "invalid_choice", "daily, weekly or hours."))
    if every == "hours":
        problems += _positive_int(schedule.get("hours"), "schedule.hours", high=720)
        if schedule.get("hours") is None:
            problems.append(Problem("schedule.hours", "required", "Every how many hours?"))
        out["hours"] = schedule.get("hours")
        start = _aware(schedule.get("start", "1970-01-01T00:00:00+00:00"), "schedule.start", problems)
        out["start"] = start.isoformat() if start else None
    elif every in ("daily", "weekly"):
        try:
            out["time"] = time.fromisoformat(schedule.get("time", "09:00")).strftime("%H:%M")
        except (TypeError, ValueError):
            problems.append(Problem("schedule.time", "invalid_time", "A time of day as HH:MM (UTC)."))
        if every == "weekly":
            weekday = schedule.get("weekday")
            if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
                problems.append(Problem("schedule.weekday", "invalid_range", "0 (Monday) to 6 (Sunday)."))
            out["weekday"] = weekday
    if schedule.get("until") is not None:
        until = _aware(schedule.get("until"), "schedule.until", problems)
        out["until"] = until.isoformat() if until else None
    return out, problems


def next_occasion(schedule: dict, *, after: datetime) -> datetime | None:
    """The first slot strictly after `after` (recurring), the `at` (once), None otherwise. UTC."""
    kind = schedule.get("kind")
    if kind == "once":
        return datetime.fromisoformat(schedule["at"])
    if kind != "recurring":
        return None
    every = schedule["every"]
    if every == "hours":
        start, step = datetime.fromisoformat(schedule["start"]), timedelta(hours=schedule["hours"])
        slot = start + step * max(0, int((after - start) // step) + 1)
    else:
        hour, minute = map(int, schedule["time"].split(":"))
        slot = after.astimezone(timezone.utc).replace(hour=hour, minute=minute, second=0, microsecond=0)
        while slot <= after or (every == "weekly" and slot.weekday() != schedule["weekday"]):
            slot += timedelta(days=1)
    until = schedule.get("until")
    if until and slot > datetime.fromisoformat(until):
        return None
    return slot


# ---------------------------------------------------------------------------- campaigns

CAMPAIGN_FIELDS = ("name", "play_id", "segment_id", "channel", "schedule", "content", "variants", "holdout_percent",
                   "cap_max_sends", "cap_days", "goal_event", "goal_days")
LOCKED_AFTER_LAUNCH = {"segment_id", "channel", "holdout_percent", "variants", "schedule"}


def _variants_clean(variants: Any, channel: str, content: dict) -> list[Problem]:
    if variants in (None, []):
        return []
    if not isinstance(variants, list) or len(variants) > MAX_VARIANTS:
        return [Problem("variants", "invalid_value", f"A list of up to {MAX_VARIANTS} variants.")]
    problems, keys = [], set()
    for index, variant in enumerate(variants):
        path = f"variants[{index}]"
        if not isinstance(variant, dict):
            problems.append(Problem(path, "invalid_type", "A variant is an object with key, weight and content."))
            continue
        key, weight = variant.get("key"), variant.get("weight")
        if not isinstance(key, str) or not key.strip() or len(key) > 64 or key in keys:
            problems.append(Problem(f"{path}.key", "invalid_value", "A unique key of at most 64 characters."))
        keys.add(key)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
            problems.append(Problem(f"{path}.weight", "invalid_range", "A weight above 0, at most 100."))
        overrides = variant.get("content") or {}
        if not isinstance(overrides, dict):
            problems.append(Problem(f"{path}.content", "invalid_type", "Content overrides are an object."))
            continue
        fields = tuple(f for f in CHANNEL_FIELDS.get(channel, ()) if f in overrides)
        problems += _content_render_problems({**content, **overrides}, fields, prefix=f"{path}.content")
    return problems


def _content_render_problems(content: dict, fields: tuple[str, ...], *, prefix: str) -> list[Problem]:
    """Compile, then render for the sample customer (a filter can fail only at render time)."""
    problems = templates.compile_content(content, fields, prefix=prefix)
    if problems:
        return problems
    data = templates.SAMPLE | {"unsubscribe_url": "https://example.com/unsubscribe/sample/"}
    for field in fields:
        try:
            templates.render(content[field], data, html=content.get("format") == "html", path=f"{prefix}.{field}")
        except DomainError as error:
            problems += error.problems
    return problems


def _campaign_clean(actor, data: dict, *, current: Campaign | None) -> tuple[dict, list[Problem]]:
    problems = [Problem(k, "unknown_field", f"“{k}” is not a field of a campaign.")
                for k in sorted(set(data) - set(CAMPAIGN_FIELDS))]
    if current is not None and current.launched_at is not None:
        problems += [Problem(k, "locked_after_launch", "This cannot change once the campaign has been launched.")
                     for k in sorted(LOCKED_AFTER_LAUNCH & set(data))
                     if data[k] != (getattr(current, k) if k != "holdout_percent" else current.holdout_percent)]
    if current is not None and current.status in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED):
        problems.append(Problem("", "finished", "A completed or cancelled campaign cannot change."))
    merged = {f: getattr(current, f) for f in CAMPAIGN_FIELDS} if current else {
        "content": {}, "variants": [], "holdout_percent": 0, "goal_event": "", "goal_days": 7}
    merged |= {k: v for k, v in data.items() if k in CAMPAIGN_FIELDS}
    problems += _text(merged.get("name"), "name", required=True, limit=200)
    channel = merged.get("channel")
    if channel not in Campaign.Channel.values:
        problems.append(Problem("channel", "invalid_choice", f"One of {', '.join(Campaign.Channel.values)}."))
    if "segment_id" in data or current is None:
        segment, segment_problems = _segment_problems(actor, merged.get("segment_id"))
        problems += segment_problems
        if segment is not None:
            merged["segment_label"] = segment.name
    play_id = merged.get("play_id")
    # An id that is not an integer (a tampered form field) is unknown too, not a query error.
    if play_id is not None and (isinstance(play_id, bool) or not isinstance(play_id, int)
                                or not Play.objects.filter(pk=play_id).exists()):
        problems.append(Problem("play_id", "unknown_play", "No such play in this workspace."))
    schedule, schedule_problems = schedule_clean(merged.get("schedule"), channel=channel)
    problems += schedule_problems
    merged["schedule"] = schedule
    content = merged.get("content")
    if not isinstance(content, dict):
        problems.append(Problem("content", "invalid_type", "Content is an object."))
        content = {}
    if content.get("format", "text") not in ("text", "html"):
        problems.append(Problem("content.format", "invalid_choice", "text or html."))
    if channel in CHANNEL_FIELDS:
        problems += _content_render_problems(content, CHANNEL_FIELDS[channel], prefix="content")
    if channel == Campaign.Channel.IN_APP and content.get("cta_url"):
        if not str(content["cta_url"]).startswith(("https://", "http://", "/")):
            problems.append(Problem("content.cta_url", "invalid_url", "A link starting with https://, http:// or /."))
    if channel == Campaign.Channel.WEBHOOK:
        endpoint = content.get("endpoint_id")
        if isinstance(endpoint, bool) or not isinstance(endpoint, int) or not WebhookEndpoint.objects.filter(
                pk=endpoint, segment_id=merged.get("segment_id")).exists():
            problems.append(Problem("content.endpoint_id", "unknown_endpoint",
                                    "Choose a webhook endpoint subscribed to this campaign's segment."))
    problems += _variants_clean(merged.get("variants"), channel, content)
    merged["holdout_percent"] = _decimal(merged.get("holdout_percent"), "holdout_percent", problems,
                                         low=Decimal(0), high=Decimal(50))
    problems += _positive_int(merged.get("cap_max_sends"), "cap_max_sends", high=1000)
    problems += _positive_int(merged.get("cap_days"), "cap_days")
    if (merged.get("cap_max_sends") is None) != (merged.get("cap_days") is None):
        problems.append(Problem("cap_days", "incomplete_cap", "A frequency cap needs both a count and a number of days."))
    problems += _text(merged.get("goal_event") or "", "goal_event", required=False, limit=200)
    problems += _positive_int(merged.get("goal_days"), "goal_days", high=365)
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
def campaign_create(*, actor, name: str, segment_id: int, channel: str, schedule: dict, content: dict | None = None,
                    **fields) -> Campaign:
    ensure_permitted(actor, "campaigns.edit")
    data, problems = _campaign_clean(actor, {"name": name, "segment_id": segment_id, "channel": channel,
                                             "schedule": schedule, "content": content or {}, **fields}, current=None)
    if problems:
        raise DomainError(problems=problems)
    attributes = _campaign_attributes(data)
    attributes["name"] = attributes["name"].strip()
    campaign = Campaign.objects.create(salt=secrets.token_hex(8), owner_id=_user_id(actor),
                                       **{k: v for k, v in attributes.items() if v is not None})
    audit_record(actor=actor, action="campaign.created", target=campaign)
    return campaign


@transaction.atomic
def campaign_update(*, actor, campaign: Campaign, **fields) -> Campaign:
    ensure_permitted(actor, "campaigns.edit")
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


def campaign_preview(*, actor, campaign: Campaign, customer: Customer | None = None, variant: str = "") -> dict:
    """The rendered content for one customer (a segment member by default, else a sample)."""
    ensure_permitted(actor, "campaigns.view")
    if customer is None and campaign.segment_id:
        customer = segment_members(segment=campaign.segment).order_by("id").first()
    data = templates.customer_context(customer) if customer is not None else dict(templates.SAMPLE)
    if not actor.has("customers.view_pii"):
        data = dict(templates.SAMPLE) | {"country": data.get("country", ""), "plan": data.get("plan", "")}
    data["unsubscribe_url"] = "https://example.com/unsubscribe/preview/"
    content = sending._content_for(campaign, variant)
    if campaign.channel == Campaign.Channel.EMAIL:
        return templates.render_email(content, data)
    if campaign.channel == Campaign.Channel.IN_APP:
        return templates.render_in_app(content, data)
    return {}


def _transition(actor, campaign: Campaign, *, allowed: set[str], action: str) -> Campaign:
    ensure_permitted(actor, "campaigns.launch")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed:
        raise Conflict.single(path="status", code="invalid_transition",
                              message=f"A {campaign.status} campaign cannot be {action}.")
    return campaign


@transaction.atomic
def campaign_launch(*, actor, campaign: Campaign, now: datetime) -> Campaign:
    """Draft/paused → scheduled (a future slot) or running. On-entry campaigns start
    with the outbox's current end as their cursor: entries from now on, not the backlog."""
    campaign = _transition(actor, campaign, allowed={Campaign.Status.DRAFT, Campaign.Status.PAUSED}, action="launched")
    if campaign.segment_id is None:
        raise Conflict.single(path="segment_id", code="segment_deleted",
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
            raise Conflict.single(path="schedule", code="no_future_occasion",
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
def campaign_pause(*, actor, campaign: Campaign, reason: str = "") -> Campaign:
    campaign = _transition(actor, campaign, allowed={Campaign.Status.SCHEDULED, Campaign.Status.RUNNING},
                           action="paused")
    before = campaign.status
    campaign.status, campaign.pause_reason = Campaign.Status.PAUSED, (reason or "Paused by hand.")[:300]
    campaign.save()
    audit_record(actor=actor, action="campaign.paused", target=campaign, changes={"status": [before, "paused"]})
    return campaign


@transaction.atomic
def campaign_cancel(*, actor, campaign: Campaign, now: datetime) -> Campaign:
    campaign = _transition(actor, campaign, allowed={Campaign.Status.DRAFT, Campaign.Status.SCHEDULED,
                                                     Campaign.Status.RUNNING, Campaign.Status.PAUSED},
                           action="cancelled")
    before = campaign.status
    campaign.status, campaign.finished_at, campaign.next_run_at = Campaign.Status.CANCELLED, now, None
    campaign.save()
    audit_record(actor=actor, action="campaign.cancelled", target=campaign, changes={"status": [before, "cancelled"]})
    return campaign


def campaign_results(*, actor, campaign: Campaign, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.view")
    return kpi.campaign_results(campaign=campaign, now=now)


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


# ---------------------------------------------------------------------------- unsubscribe


@transaction.atomic
def unsubscribe_apply(*, token: str, now: datetime) -> dict:
    """Withdraw the email consent the link was made for. Idempotent: a second click (or a
    mail client's link prefetch) records nothing new. Bad or foreign tokens → 400."""
    data = unsubscribe_read(token)
    customer = Customer.objects.filter(pk=data["u"]).first() if data else None
    if customer is None:
        raise DomainError.single(path="token", code="invalid_token", message="This unsubscribe link is not valid.")
    current = Consent.objects.filter(customer=customer, channel=Consent.Channel.EMAIL).first()
    if current is not None and not current.granted:
        return {"changed": False, "customer_id": customer.pk}
    consents_record(changes=[ConsentChangeIn(customer_id=customer.pk, channel=Consent.Channel.EMAIL, granted=False,
                                             changed_at=now, source=f"unsubscribe:campaign:{data['c']}")])
    return {"changed": True, "customer_id": customer.pk}


# ---------------------------------------------------------------------------- webhooks and exports


def _webhook_clean(actor, *, url: Any, events: Any, segment_id: Any, check_segment: bool,
                   check_url: bool = True) -> tuple[Segment | None, list]:
    problems, segment = [], None
    if check_segment:
        segment, problems = _segment_problems(actor, segment_id)
    try:
        if check_url:
            ssrf.check_url(url)
    except ssrf.UnsafeURL as error:
        problems.append(Problem("url", error.code, error.message))
    if not isinstance(events, list) or not events or not set(events) <= set(WebhookEndpoint.Event.values):
        problems.append(Problem("events", "invalid_choice", "Choose entered, exited or both."))
    return segment, problems


@transaction.atomic
def webhook_endpoint_create(*, actor, segment_id: int, url: str, events: list[str]) -> WebhookEndpoint:
    """Subscribe a URL to a segment's changes from now on (the cursor starts at the outbox's end)."""
    ensure_permitted(actor, "campaigns.edit")
    segment, problems = _webhook_clean(actor, url=url, events=events, segment_id=segment_id, check_segment=True)
    if problems:
        raise DomainError(problems=problems)
    cursor = MembershipChange.objects.filter(segment=segment).aggregate(m=Max("id"))["m"] or 0
    endpoint = WebhookEndpoint.objects.create(segment=segment, segment_label=segment.name, url=url,
                                              events=sorted(set(events)), secret=webhooks.secret_new(),
                                              cursor=cursor, owner_id=_user_id(actor))
    audit_record(actor=actor, action="webhook.created", target=endpoint)
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, actor, endpoint: WebhookEndpoint, url: str | None = None,
                            events: list[str] | None = None, active: bool | None = None) -> WebhookEndpoint:
    ensure_permitted(actor, "campaigns.edit")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    _, problems = _webhook_clean(actor, url=url if url is not None else endpoint.url,
                                 events=events if events is not None else endpoint.events, segment_id=None,
                                 check_segment=False, check_url=url is not None)
    # The stored URL is checked again at every delivery (campaigns.webhooks.attempt), so an
    # endpoint whose URL the guard now refuses can still be renamed or switched off.
    if active and endpoint.segment_id is None:
        problems.append(Problem("active", "segment_deleted", "Its segment was deleted."))
    if problems:
        raise DomainError(problems=problems)
    endpoint.url = url if url is not None else endpoint.url
    endpoint.events = sorted(set(events)) if events is not None else endpoint.events
    if active is not None:
        endpoint.active, endpoint.disabled_reason = active, "" if active else "Disabled by hand."
    endpoint.save()
    audit_record(actor=actor, action="webhook.updated", target=endpoint)
    return endpoint


def webhook_send_test(*, actor, endpoint: WebhookEndpoint, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.edit")
    return webhooks.send_test(endpoint=endpoint, now=now)


def audience_export(*, actor, segment: Segment):
    """CSV chunks of hashed identifiers (data.export); audited when started."""
    ensure_permitted(actor, "data.export")
    ensure_permitted(actor, "segments.view")
    audit_record(actor=actor, action="segment.audience_exported", target=segment, target_label=segment.key)
    return audience_csv(segment=segment)


def campaign_audience_export(*, actor, campaign: Campaign, now: datetime):
    """CSV chunks of the campaign's treatment members, hashed (data.export); audited.
    Members not assigned yet get their arm now, so the holdout stays out of every upload."""
    ensure_permitted(actor, "data.export")
    ensure_permitted(actor, "segments.view")
    if campaign.segment_id is None:
        raise Conflict.single(path="segment_id", code="segment_deleted",
                              message="The campaign's segment was deleted: there is no audience to export.")
    assign_members(campaign=campaign, now=now)
    audit_record(actor=actor, action="campaign.audience_exported", target=campaign)
    return audience_csv(segment=campaign.segment, campaign=campaign)


# ------------------------------------------------------------------ merged customers

# Per campaign the person keeps one arm: the survivor's, else the lowest loser's.
_MERGE_ASSIGNMENTS_SQL = """
WITH ranked AS (
    SELECT id, row_number() OVER (PARTITION BY campaign_id ORDER BY customer_id = %(survivor)s DESC, customer_id) AS rank
    FROM campaigns_assignment WHERE customer_id = ANY(%(everyone)s)
)
DELETE FROM campaigns_assignment a USING ranked r WHERE a.id = r.id AND r.rank > 1
"""

# Every send stays in the log. One whose occasion the survivor (or a lower loser) also has
# keeps its own under a marked occasion, so (campaign, customer, occasion) stays unique and
# the survivor is still known to have had that occasion.
_MERGE_SENDS_SQL = """
UPDATE campaigns_send s SET occasion = left(s.occasion, 32) || ' (merged ' || s.customer_id || ')'
WHERE s.customer_id = ANY(%(losers)s) AND EXISTS (
    SELECT 1 FROM campaigns_send k WHERE k.campaign_id = s.campaign_id AND k.occasion = s.occasion
      AND k.customer_id = ANY(%(everyone)s) AND (k.customer_id = %(survivor)s OR k.customer_id < s.customer_id))
"""


def customers_merged(*, survivor: int, losers: list[int], now: datetime) -> None:
    """customers.touch's merge handler (settings.CUSTOMER_MERGE_HANDLERS): profiles that are
    one person became `survivor` (an identity merge; the losers are deleted next): their arms and sends become the survivor's, so holdout results count the
    person once and frequency caps and "once" occasions see everything they were sent."""
    params = {"survivor": survivor, "losers": list(losers), "everyone": [survivor, *losers]}
    with connection.cursor() as cursor:
        cursor.execute(_MERGE_ASSIGNMENTS_SQL, params)
        cursor.execute(_MERGE_SENDS_SQL, params)
        for table in ("campaigns_assignment", "campaigns_send"):
            cursor.execute(f"UPDATE {table} SET customer_id = %(survivor)s WHERE customer_id = ANY(%(losers)s)",
                           params)
