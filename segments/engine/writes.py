"""What every membership write shares: the lock that keeps customer deletes out while it
decides, and the segment's size history per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from django.db import connection

from segments.lookup import sync_soon
from segments.models import Segment


@dataclass(frozen=True)
class Diff:
    entered: int
    exited: int
    size: int


# The first key of the advisory lock that customer deletes take exclusively (the trigger of
# migration 0005, which names the same number); the second is the schema's hashtext.
CUSTOMER_DELETES_LOCK = 20261202


def hold_customer_deletes(cursor) -> None:
    """Make customer deletes in this tenant wait until the current transaction ends.

    Membership writes call this before the statement that decides which customers' memberships
    to open (a full evaluation: after its compiled statement, then it drops the customers
    deleted meanwhile; see segments.engine._full_diff). A delete that committed before is
    not seen by that statement; one still running waits, at its trigger, for this transaction, then removes
    the memberships it wrote for the customers it deleted — what the foreign key used to
    guarantee, for one lock per evaluation instead of a check and a row lock per membership."""
    cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))",
                   [CUSTOMER_DELETES_LOCK, connection.schema_name])


def record_day(segment: Segment, now: datetime, diff: Diff) -> None:
    if diff.entered or diff.exited:
        sync_soon()  # the lookup's answers follow the outbox
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_segmentsizesnapshot (segment_id, day, size, entered, exited) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (segment_id, day) DO UPDATE SET size = EXCLUDED.size, "
            "entered = segments_segmentsizesnapshot.entered + EXCLUDED.entered, "
            "exited = segments_segmentsizesnapshot.exited + EXCLUDED.exited",
            [segment.pk, now.astimezone(timezone.utc).date(), diff.size, diff.entered, diff.exited])
