"""Static and snapshot segments: their members change only through these calls."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from segments.engine.writes import Diff, hold_customer_deletes, record_day
from segments.models import Membership, Segment


def members_add(*, segment: Segment, customer_ids: list[int], now: datetime,
                source: str = Membership.Source.MANUAL) -> int:
    """Open a membership for each customer not already in the (static) segment."""
    return _static_change(segment, customer_ids, now, add=True, source=source)


def members_remove(*, segment: Segment, customer_ids: list[int], now: datetime) -> int:
    return _static_change(segment, customer_ids, now, add=False, source="")


def _static_change(segment: Segment, customer_ids: list[int], now: datetime, *, add: bool, source: str) -> int:
    if segment.kind == Segment.Kind.DYNAMIC:
        raise ValueError("dynamic segments change by their rule")  # the services refuse first
    with transaction.atomic(), connection.cursor() as cursor:
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        hold_customer_deletes(cursor)
        if add:
            cursor.execute(
                "WITH opened AS (INSERT INTO segments_membership (segment_id, customer_id, entered_at, exited_at, "
                "definition_version, source) SELECT %(s)s, c.id, %(now)s, NULL, 0, %(src)s FROM customers_customer c "
                "WHERE c.id = ANY(%(ids)s) AND NOT EXISTS (SELECT 1 FROM segments_membership o WHERE "
                "o.segment_id = %(s)s AND o.customer_id = c.id AND o.exited_at IS NULL) ORDER BY c.id "
                "RETURNING customer_id) INSERT INTO segments_membershipchange (segment_id, customer_id, change, at, "
                "created_at) SELECT %(s)s, customer_id, 'entered', %(now)s, %(now)s FROM opened RETURNING customer_id",
                {"s": segment.pk, "now": now, "ids": list(customer_ids), "src": source})
        else:
            cursor.execute(
                "WITH closed AS (UPDATE segments_membership SET exited_at = %(now)s WHERE segment_id = %(s)s "
                "AND exited_at IS NULL AND customer_id = ANY(%(ids)s) RETURNING customer_id) "
                "INSERT INTO segments_membershipchange (segment_id, customer_id, change, at, created_at) "
                "SELECT %(s)s, customer_id, 'exited', %(now)s, %(now)s FROM closed RETURNING customer_id",
                {"s": segment.pk, "now": now, "ids": list(customer_ids)})
        changed = len(cursor.fetchall())
        size = Membership.objects.filter(segment=segment, exited_at__isnull=True).count()
        fields = {"size": size, "last_evaluated_at": now}
        if changed:
            fields["last_changed_at"] = now
        Segment.objects.filter(pk=segment.pk).update(**fields)
        record_day(segment, now, Diff(entered=changed if add else 0, exited=0 if add else changed, size=size))
    return changed


def snapshot_fill(*, snapshot: Segment, source: Segment, now: datetime) -> int:
    """Freeze `source`'s members at `now` into the (new, empty) snapshot segment."""
    with transaction.atomic(), connection.cursor() as cursor:
        hold_customer_deletes(cursor)
        cursor.execute(
            "INSERT INTO segments_membership (segment_id, customer_id, entered_at, exited_at, definition_version, "
            "source) SELECT %(snap)s, customer_id, %(now)s, NULL, 0, 'snapshot' FROM segments_membership "
            "WHERE segment_id = %(src)s AND entered_at <= %(now)s AND (exited_at IS NULL OR exited_at > %(now)s) "
            "ORDER BY customer_id",
            {"snap": snapshot.pk, "src": source.pk, "now": now})
        size = cursor.rowcount
        Segment.objects.filter(pk=snapshot.pk).update(size=size, last_evaluated_at=now, last_changed_at=now,
                                                      frozen_at=now)
        record_day(snapshot, now, Diff(entered=size, exited=0, size=size))
    return size
