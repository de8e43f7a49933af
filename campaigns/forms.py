"""The campaign editor's and webhook form's HTML fields, turned into the keyword arguments
of campaigns.services, and the services' problem paths turned back into those fields.

Parsing only: every rule (required fields, ranges, schedules, templates, locks after
launch) is checked by the services, which collect all problems in one DomainError. A value
that does not even parse (a number typed as text) is handed over as typed, so the service
reports it with its own code and path, in the same answer as every other problem.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from dataclasses import dataclass, field

from campaigns.models import Campaign, WebhookEndpoint
from campaigns.services.campaigns import LOCKED_AFTER_LAUNCH, MAX_VARIANTS
from common.errors import Code, DomainError, Problem

# The content fields of each channel as the editor names them: (HTML field, content key).
CONTENT_INPUTS = {
    Campaign.Channel.EMAIL: (("email_subject", "subject"), ("email_body", "body"), ("email_format", "format")),
    Campaign.Channel.IN_APP: (("inapp_title", "title"), ("inapp_body", "body"), ("inapp_cta_label", "cta_label"),
                              ("inapp_cta_url", "cta_url")),
}
# What a variant may override, per channel (campaigns.services.campaigns.CHANNEL_FIELDS).
VARIANT_INPUTS = {Campaign.Channel.EMAIL: ("subject", "body"), Campaign.Channel.IN_APP: ("title", "body")}
SCHEDULE_INPUTS = {"kind": "schedule_kind", "at": "schedule_at", "every": "schedule_every", "time": "schedule_time",
                   "weekday": "schedule_weekday", "hours": "schedule_hours", "until": "schedule_until",
                   "start": "schedule_start"}
PLAIN_INPUTS = {"name": "name", "play_id": "play", "segment_id": "segment", "channel": "channel",
                "holdout_percent": "holdout_percent", "cap_max_sends": "cap_max_sends", "cap_days": "cap_days",
                "goal_event": "goal_event", "goal_days": "goal_days", "schedule": "schedule_kind",
                "variants": "variants"}
EDITOR_INPUTS = ({*PLAIN_INPUTS.values(), *SCHEDULE_INPUTS.values()}
                 | {name for inputs in CONTENT_INPUTS.values() for name, _ in inputs})
VARIANT_PATH = re.compile(r"^variants\[(\d+)\](?:\.(key|weight|content)(?:\.(\w+))?)?$")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def ensure_no_nul(post) -> None:
    """PostgreSQL text cannot hold NUL: refuse it here, coded at its field, as DRF's and
    Django's own form fields do (the services never see such a value)."""
    problems = [Problem(name, Code.NULL_CHARACTERS_NOT_ALLOWED, "Remove the NUL character from this field.")
                for name, values in post.lists() if any("\x00" in value for value in values)]
    if problems:
        raise DomainError(problems=problems)


def _number(raw: str):
    """An int when the text is one; otherwise the text itself (the service codes it)."""
    raw = raw.strip()
    if raw == "":
        return None
    return int(raw) if re.fullmatch(r"-?\d{1,12}", raw) else raw


def _moment(raw: str) -> str | None:
    """A `datetime-local` value is a wall-clock time the editor labels UTC."""
    raw = raw.strip()
    if not raw:
        return None
    has_offset = raw.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", raw)
    return raw if has_offset else f"{raw}+00:00" if len(raw) > 16 else f"{raw}:00+00:00"


def _utc_input(iso: str | None) -> str:
    """A stored ISO moment as the editor's `datetime-local` value, in UTC (its label)."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M")
    except ValueError:
        return ""


def _schedule(post) -> dict:
    kind = post.get("schedule_kind", "").strip()
    schedule: dict = {"kind": kind}
    if kind == Campaign.ScheduleKind.ONCE:
        schedule["at"] = _moment(post.get("schedule_at", ""))
    elif kind == Campaign.ScheduleKind.RECURRING:
        every = post.get("schedule_every", "").strip()
        schedule["every"] = every
        if every == "hours":
            schedule["hours"] = _number(post.get("schedule_hours", ""))
            if start := _moment(post.get("schedule_start", "")):
                schedule["start"] = start
        else:
            schedule["time"] = post.get("schedule_time", "").strip() or "09:00"
            if every == "weekly":
                schedule["weekday"] = _number(post.get("schedule_weekday", ""))
        if until := _moment(post.get("schedule_until", "")):
            schedule["until"] = until
    return schedule


@dataclass
class VariantRow:
    """One row of the editor's A/B table (index = its place among the non-empty rows)."""

    key: str = ""
    weight: str = ""
    overrides: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def as_variant(self) -> dict:
        weight = self.weight.strip()
        number: object = weight
        if re.fullmatch(r"\d{1,3}(\.\d+)?", weight):
            number = float(weight) if "." in weight else int(weight)
        return {"key": self.key.strip(), "weight": number, "content": {k: v for k, v in self.overrides.items() if v}}


def variant_rows(post, channel: str) -> list[VariantRow]:
    """The non-empty rows of the posted A/B table, in order."""
    rows = []
    for index in range(MAX_VARIANTS):
        prefix = f"variant_{index}_"
        row = VariantRow(key=post.get(prefix + "key", ""), weight=post.get(prefix + "weight", ""),
                         overrides={f: post.get(prefix + f, "") for f in VARIANT_INPUTS.get(channel, ())})
        if row.key.strip() or row.weight.strip() or any(v.strip() for v in row.overrides.values()):
            rows.append(row)
    return rows


def rows_of(campaign: Campaign) -> list[VariantRow]:
    return [VariantRow(key=v.get("key", ""), weight=str(v.get("weight", "")), overrides=dict(v.get("content") or {}))
            for v in campaign.variants or []]


def campaign_fields(post, *, campaign: Campaign | None) -> tuple[dict, list[VariantRow]]:
    """The service's keyword arguments from the editor's POST, and the variant rows (kept
    for re-rendering). Fields locked after launch are sent only if the form carried them:
    the editor disables them for a launched campaign, so an unchanged lock is not a change."""
    channel = post.get("channel", "").strip() or (campaign.channel if campaign else "")
    rows = variant_rows(post, channel)
    content = {key: post.get(name, "") for name, key in CONTENT_INPUTS.get(channel, ())
               if post.get(name, "") != ""}
    if channel == Campaign.Channel.EMAIL:
        content.setdefault("format", "text")
    play = post.get("play", "").strip()
    fields = {
        "name": post.get("name", ""),
        "play_id": _number(play) if play else None,
        "segment_id": _number(post.get("segment", "")),
        "channel": channel,
        "schedule": _schedule(post),
        "content": content,
        "variants": [row.as_variant() for row in rows],
        "holdout_percent": post.get("holdout_percent", "").strip() or 0,
        "cap_max_sends": _number(post.get("cap_max_sends", "")),
        "cap_days": _number(post.get("cap_days", "")),
        "goal_event": post.get("goal_event", "").strip(),
        "goal_days": 7 if (days := _number(post.get("goal_days", ""))) is None else days,
    }
    if campaign is not None and campaign.launched_at is not None:
        carried = {"segment_id": "segment", "channel": "channel", "holdout_percent": "holdout_percent",
                   "schedule": "schedule_kind", "variants": "variants_present"}
        for name in LOCKED_AFTER_LAUNCH:
            if carried[name] not in post:
                fields.pop(name, None)
    return fields, rows


def field_of(path: str, channel: str) -> str:
    """The editor field a problem path belongs to ("" = the form as a whole)."""
    if path in EDITOR_INPUTS:  # a problem the interface found names the field itself
        return path
    if path in PLAIN_INPUTS:
        return PLAIN_INPUTS[path]
    if path.startswith("schedule."):
        return SCHEDULE_INPUTS.get(path.split(".", 1)[1], "schedule_kind")
    if path.startswith("content."):
        key = path.split(".", 1)[1]
        names = {content_key: name for name, content_key in CONTENT_INPUTS.get(channel, ())}
        return names.get(key, "content")
    return "variants" if path.startswith("variants") else ""


def place_problems(problems: list[Problem], channel: str, rows: list[VariantRow]) -> dict[str, list[Problem]]:
    """{editor field: problems}; a variant's problems go onto its row instead."""
    placed: dict[str, list[Problem]] = {}
    for problem in problems:
        match = VARIANT_PATH.match(problem.path)
        if match and int(match.group(1)) < len(rows):
            part = match.group(3) if match.group(2) == "content" and match.group(3) else match.group(2) or "key"
            rows[int(match.group(1))].errors.setdefault(part, []).append(problem)
            continue
        placed.setdefault(field_of(problem.path, channel), []).append(problem)
    return placed


def initial_values(campaign: Campaign | None) -> dict:
    """The editor's values for a saved campaign (or a new one's defaults)."""
    if campaign is None:
        return {"channel": Campaign.Channel.EMAIL, "schedule_kind": Campaign.ScheduleKind.ONCE,
                "schedule_every": "daily", "schedule_time": "09:00", "holdout_percent": "10", "goal_days": "7",
                "email_format": "text"}
    schedule = campaign.schedule or {}
    values = {"name": campaign.name, "play": str(campaign.play_id or ""), "segment": str(campaign.segment_id or ""),
              "channel": campaign.channel, "schedule_kind": schedule.get("kind", campaign.schedule_kind),
              "schedule_at": _utc_input(schedule.get("at")), "schedule_start": _utc_input(schedule.get("start")),
              "schedule_every": schedule.get("every", "daily"), "schedule_time": schedule.get("time", "09:00"),
              "schedule_weekday": str(schedule.get("weekday", "")), "schedule_hours": str(schedule.get("hours", "")),
              "schedule_until": _utc_input(schedule.get("until")),
              "holdout_percent": f"{campaign.holdout_percent.normalize():f}",
              "cap_max_sends": str(campaign.cap_max_sends or ""), "cap_days": str(campaign.cap_days or ""),
              "goal_event": campaign.goal_event, "goal_days": str(campaign.goal_days)}
    for name, key in CONTENT_INPUTS.get(campaign.channel, ()):
        values[name] = (campaign.content or {}).get(key, "")
    return values


def posted_values(post) -> dict:
    return {key: post.get(key, "") for key in post}


# ------------------------------------------------------------------------------ webhooks


def webhook_fields(post) -> dict:
    """A webhook form's URL, events and segment for webhook_endpoint_create/update."""
    events = [e for e in post.getlist("events") if e]
    return {"url": post.get("url", "").strip(), "events": events, "segment_id": _number(post.get("segment", ""))}


EVENT_CHOICES = WebhookEndpoint.Event.choices
