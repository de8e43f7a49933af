"""UTC calendar periods (day, week from Monday, month), as the reports bucket time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def period_start(moment: datetime, period: str) -> datetime:
    """The UTC calendar day, week (from Monday) or month `moment` falls in."""
    day = moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def shift(start: datetime, period: str, n: int) -> datetime:
    """The start of the period n periods after `start`'s (n may be negative)."""
    if period == "day":
        return start + timedelta(days=n)
    if period == "week":
        return start + timedelta(weeks=n)
    months = start.year * 12 + start.month - 1 + n
    return start.replace(year=months // 12, month=months % 12 + 1)
