"""The instants any value may name: trait values, event and answer times, rule values,
filters and query parameters. Wide enough for any birth date or a contract's end, narrow
enough that no offset, clock-skew correction or rule window overflows Python's datetime;
always handed to PostgreSQL in UTC (it refuses offsets past ±15:59, which Python takes)."""

from __future__ import annotations

from datetime import datetime, timezone

EARLIEST = datetime(1800, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
MOMENT_RANGE = "between 1800-01-01 and 2200-12-31"


def in_range(moment: datetime) -> bool:
    return EARLIEST <= moment <= LATEST


def utc_moment(moment: datetime) -> datetime | None:
    """`moment` in UTC (a naive one is taken as UTC), or None when it lies outside the range."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # past year 9999 or before year 1 once the offset is applied
        return None
    return moment if in_range(moment) else None
