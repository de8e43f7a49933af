"""When a campaign sends: its schedule, checked, and the next occasion after a moment."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any


from campaigns.models import Campaign
from campaigns.services.input import clean_aware, clean_positive_int
from common.errors import CampaignCode, Code, Problem

EVERY = ("daily", "weekly", "hours")

def schedule_clean(schedule: Any, *, channel: str) -> tuple[dict, list[Problem]]:
    """A normalised schedule, or problems under `schedule.`."""
    if not isinstance(schedule, dict):
        return {}, [Problem("schedule", Code.INVALID_TYPE, "A schedule is an object with a kind.")]
    kind, problems = schedule.get("kind"), []
    if kind == Campaign.ScheduleKind.ONCE:
        at = clean_aware(schedule.get("at"), "schedule.at", problems)
        return ({"kind": kind, "at": at.isoformat()} if at else {}), problems
    if kind == Campaign.ScheduleKind.ON_ENTRY:
        if channel not in (Campaign.Channel.EMAIL, Campaign.Channel.IN_APP):
            problems.append(Problem("schedule.kind", CampaignCode.INVALID_FOR_CHANNEL,
                                    "Only email and in-app campaigns can fire when a customer enters the segment."))
        return {"kind": kind}, problems
    if kind != Campaign.ScheduleKind.RECURRING:
        return {}, [Problem("schedule.kind", Code.INVALID_CHOICE, "once, recurring or on_entry.")]
    every = schedule.get("every")
    out: dict[str, Any] = {"kind": kind, "every": every}
    if every not in EVERY:
        problems.append(Problem("schedule.every", Code.INVALID_CHOICE, "daily, weekly or hours."))
    if every == "hours":
        problems += clean_positive_int(schedule.get("hours"), "schedule.hours", high=720)
        if schedule.get("hours") is None:
            problems.append(Problem("schedule.hours", Code.REQUIRED, "Every how many hours?"))
        out["hours"] = schedule.get("hours")
        start = clean_aware(schedule.get("start", "1970-01-01T00:00:00+00:00"), "schedule.start", problems)
        out["start"] = start.isoformat() if start else None
    elif every in ("daily", "weekly"):
        try:
            out["time"] = time.fromisoformat(schedule.get("time", "09:00")).strftime("%H:%M")
        except (TypeError, ValueError):
            problems.append(Problem("schedule.time", Code.INVALID_TIME, "A time of day as HH:MM (UTC)."))
        if every == "weekly":
            weekday = schedule.get("weekday")
            if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
                problems.append(Problem("schedule.weekday", Code.INVALID_RANGE, "0 (Monday) to 6 (Sunday)."))
            out["weekday"] = weekday
    if schedule.get("until") is not None:
        until = clean_aware(schedule.get("until"), "schedule.until", problems)
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
