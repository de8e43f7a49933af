"""Checks the campaign services share: each returns the problems of one value, with its path."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any


from common.actors import Actor
from common.errors import CampaignCode, Code, Problem
from segments.models import Segment


def actor_user_id(actor: Actor) -> int | None:
    return getattr(actor, "user_id", None)


def segment_problems(actor: Actor, segment_id: Any, path: str = "segment_id") -> tuple[Segment | None, list[Problem]]:
    """The segment, if it exists in this workspace and the actor may see segments."""
    if segment_id is None:
        return None, [Problem(path, Code.REQUIRED, "Choose a segment.")]
    if isinstance(segment_id, bool) or not isinstance(segment_id, int):
        return None, [Problem(path, Code.INVALID_TYPE, "A segment is named by its id.")]
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None or actor is None or not actor.has("segments.view"):
        # Same answer for "absent" and "not yours to see": ids reveal nothing.
        return None, [Problem(path, Code.UNKNOWN_SEGMENT, "No such segment in this workspace.")]
    return segment, []


def clean_text(value: Any, path: str, *, required: bool, limit: int) -> list[Problem]:
    if value is None or value == "":
        return [Problem(path, Code.REQUIRED, "This is required.")] if required else []
    if not isinstance(value, str) or len(value) > limit:
        return [Problem(path, Code.INVALID_VALUE, f"Text of at most {limit:,} characters.")]
    return []


def clean_positive_int(value: Any, path: str, *, low: int = 1, high: int = 3650) -> list[Problem]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return [Problem(path, Code.INVALID_RANGE, f"A whole number from {low} to {high}.")]
    return []


def clean_decimal(value: Any, path: str, problems: list[Problem], *, low=None, high=None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite() or (low is not None and number < low) or \
            (high is not None and number > high):
        bounds = f" from {low} to {high}" if low is not None and high is not None else ""
        problems.append(Problem(path, Code.INVALID_RANGE, f"A number{bounds}."))
        return None
    return number


def clean_date(value: Any, path: str, problems: list[Problem]):
    from datetime import date

    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(Problem(path, Code.INVALID_DATE, "A date as YYYY-MM-DD."))
        return None


def clean_aware(value: Any, path: str, problems: list[Problem]) -> datetime | None:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(Problem(path, Code.INVALID_DATETIME, "A date and time in ISO 8601, with its offset."))
        return None
    if moment.tzinfo is None:
        problems.append(Problem(path, CampaignCode.NAIVE_DATETIME,
                                "Give the time zone offset (e.g. 2026-06-01T09:00:00+00:00)."))
        return None
    return moment
