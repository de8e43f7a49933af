"""Churn per period from each customer's first and last activity.

A customer is *alive* from their first event until they churn, which happens
`inactivity_days` after their last event — if that moment is before `now` (a customer
still inside the window has not churned yet). For a period [start, end):

    churn rate = customers churning in [start, end) ÷ customers alive at `start`

Only whole periods before `now` are reported; the current, partial one is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

PERIOD_DAYS = {"week": 7, "month": 365.25 / 12, "quarter": 365.25 / 4}


@dataclass(frozen=True)
class PeriodChurn:
    start: datetime
    end: datetime
    alive: int  # at the start
    churned: int  # during the period
    present: int  # alive at any moment of the period (the ARPU denominator)

    @property
    def rate(self) -> float | None:
        return self.churned / self.alive if self.alive else None


def period_starts(period: str, *, now: datetime, count: int) -> list[datetime]:
    """The starts of the last `count` complete periods before `now`, oldest first, plus
    the start of the current one (so consecutive pairs bound each period). UTC calendar
    periods: weeks start on Monday, months on the 1st, quarters in Jan/Apr/Jul/Oct."""
    current = _period_start(period, now.astimezone(timezone.utc))
    starts = [current]
    for _ in range(count):
        starts.append(_period_start(period, starts[-1] - timedelta(days=1)))
    return starts[::-1]


def _period_start(period: str, moment: datetime) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(day=1, month=3 * ((day.month - 1) // 3) + 1)
    raise ValueError(f"unknown period {period!r}")


def churn_moments(last_seen: np.ndarray, *, inactivity_days: int, now: datetime) -> np.ndarray:
    """When each customer churned (datetime64[us]); NaT for customers not (yet) churned."""
    last_seen = np.asarray(last_seen, dtype="datetime64[us]")
    moments = last_seen + np.timedelta64(inactivity_days, "D")
    now64 = np.datetime64(now.astimezone(timezone.utc).replace(tzinfo=None), "us")
    return np.where(moments <= now64, moments, np.datetime64("NaT"))


def churn_by_period(first_seen: np.ndarray, last_seen: np.ndarray, *, period: str, inactivity_days: int,
                    now: datetime, count: int = 12) -> list[PeriodChurn]:
    first = np.asarray(first_seen, dtype="datetime64[us]")
    churned_at = churn_moments(last_seen, inactivity_days=inactivity_days, now=now)
    bounds = [np.datetime64(b.replace(tzinfo=None), "us") for b in period_starts(period, now=now, count=count)]
    out = []
    for start, end in zip(bounds, bounds[1:]):
        # NaT compares False with everything: a customer who never churned is alive.
        alive = (first < start) & ~(churned_at <= start)
        churned = alive & (churned_at > start) & (churned_at <= end)
        present = (first < end) & ~(churned_at <= start)
        out.append(PeriodChurn(start=_aware(start), end=_aware(end), alive=int(alive.sum()),
                               churned=int(churned.sum()), present=int(present.sum())))
    return out


def _aware(moment: np.datetime64) -> datetime:
    return moment.astype(datetime).replace(tzinfo=timezone.utc)
