"""Engagement snapshots: the engagement KPI's history.

A customer's engagement score (customers.metrics.engagement) depends on their last 30 days
and on how they compare with everyone else, so it cannot be rebuilt for a past day from a
handful of columns; the metrics keep only today's. A snapshot scores every customer as of
`now` from their events before it (the metrics' own reading and formula) and stores, per
segment with members then and for all customers, the members' mean score — one row per
group and UTC day; a rerun the same day replaces it. The nightly run takes today's; the
`snapshot_engagement` command (and the demo) take past days', so trends have a history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone

from django.db import connection, transaction

from customers import metrics_store
from customers.metrics_refresh import metrics_settings_get
from insights.models import EngagementSnapshot

Progress = Callable[[int, int, str], None]

# Members at `now` of every segment, and all customers (who had signed up, else been
# created, by then), with their scores (NULL: no event yet, not scored).
_SNAPSHOT_SQL = """
INSERT INTO insights_engagementsnapshot (segment_id, day, taken_at, members, scored, mean, created_at, updated_at)
SELECT m.segment_id, %(day)s, %(now)s, count(*), count(s.score), avg(s.score), %(now)s, %(now)s
FROM segments_membership m LEFT JOIN engagement_in s ON s.customer_id = m.customer_id
WHERE m.entered_at <= %(now)s AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
GROUP BY m.segment_id
UNION ALL
SELECT NULL, %(day)s, %(now)s, count(*), count(s.score), avg(s.score), %(now)s, %(now)s
FROM customers_customer c LEFT JOIN engagement_in s ON s.customer_id = c.id
WHERE COALESCE(c.signed_up_at, c.created_at) <= %(now)s
HAVING count(*) > 0
"""


def engagement_snapshot_take(*, now: datetime, progress: Progress | None = None) -> int:
    """Score every customer as of `now` and store each group's mean; returns the rows written."""
    tick = progress or (lambda done, total, message: None)
    settings = metrics_settings_get()
    day = now.astimezone(timezone.utc).date()
    try:
        metrics_store.facts_fill(settings=settings, now=now, progress=tick)
        with transaction.atomic(), connection.cursor() as cursor:
            metrics_store.engagement_fill(now=now)
            EngagementSnapshot.objects.filter(day=day).delete()
            cursor.execute(_SNAPSHOT_SQL, {"day": day, "now": now})
            written = cursor.rowcount
            cursor.execute("DROP TABLE engagement_in")  # not left to a caller's enclosing transaction
    finally:
        metrics_store.facts_drop()
    return written


def engagement_by_period(*, segment_ids: list[int], starts: list[datetime], ends: list[datetime]) \
        -> dict[int, dict[datetime, float | None]]:
    """Per group (a segment's id; 0 for all customers) and period start, the mean of the
    latest snapshot taken in [start, end) — the last period's end (now) included."""
    ends = [*ends[:-1], ends[-1] + timedelta(microseconds=1)]
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT DISTINCT ON (COALESCE(e.segment_id, 0), sp.start) COALESCE(e.segment_id, 0), sp.start, e.mean
            FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS sp(start, stop)
            JOIN insights_engagementsnapshot e ON e.taken_at >= sp.start AND e.taken_at < sp.stop
                AND (e.segment_id = ANY(%(segments)s::bigint[]) OR e.segment_id IS NULL)
            ORDER BY COALESCE(e.segment_id, 0), sp.start, e.taken_at DESC""",
            {"starts": starts, "ends": ends, "segments": segment_ids})
        found: dict[int, dict[datetime, float | None]] = {}
        for group, start, mean in cursor.fetchall():
            found.setdefault(group, {})[start] = None if mean is None else round(mean, 1)
    return found


def snapshot_moments(*, now: datetime, days: int) -> list[datetime]:
    """The moments a back-fill of `days` days takes: each earlier day's end (its last
    microsecond), oldest first, then `now` for today."""
    today = datetime.combine(now.astimezone(timezone.utc).date(), time(), tzinfo=timezone.utc)
    return [today - timedelta(days=n - 1, microseconds=1) for n in range(days - 1, 0, -1)] + [now]
