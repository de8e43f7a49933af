"""What the campaigns tick does each minute in one tenant: pause campaigns that lost their
segment, start due occasions, feed on-entry campaigns from the segment outbox."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from campaigns import sending
from campaigns.models import Campaign
from campaigns.services.campaigns import campaigns_segment_gone
from campaigns.services.schedules import next_occasion
from common.clock import Clock
from segments.models import MembershipChange

ENTRY_BATCH = 1000


def occasion_key(campaign: Campaign, slot: datetime) -> str:
    return "once" if campaign.schedule_kind == Campaign.ScheduleKind.ONCE else f"run:{slot.isoformat()}"


def due_occasions(*, now: datetime) -> list[tuple[int, str]]:
    """Move due campaigns forward one occasion and return (campaign id, occasion) to send.
    Row locks (SKIP LOCKED) make two overlapping ticks hand out each occasion once."""
    out = []
    with transaction.atomic():
        due = (Campaign.objects.select_for_update(skip_locked=True)
               .filter(status__in=(Campaign.Status.SCHEDULED, Campaign.Status.RUNNING), next_run_at__lte=now,
                       segment__isnull=False)
               .exclude(schedule_kind=Campaign.ScheduleKind.ON_ENTRY))
        for campaign in due:
            slot = campaign.next_run_at
            campaign.status = Campaign.Status.RUNNING
            campaign.next_run_at = (next_occasion(campaign.schedule, after=slot)
                                    if campaign.schedule_kind == Campaign.ScheduleKind.RECURRING else None)
            campaign.save(update_fields=["status", "next_run_at", "updated_at"])
            if campaign.channel == Campaign.Channel.EMAIL:
                out.append((campaign.pk, occasion_key(campaign, slot)))
            else:
                # In-app messages are pulled by the customer's app; the arms are fixed now.
                sending.assign_members(campaign=campaign, now=now)
    return out


def occasion_finished(*, campaign_id: int, now: datetime) -> None:
    """After the last batch of an occasion: one-offs and exhausted recurrences complete."""
    Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING, next_run_at__isnull=True).exclude(
        schedule_kind=Campaign.ScheduleKind.ON_ENTRY).update(status=Campaign.Status.COMPLETED, finished_at=now,
                                                              updated_at=now)


def on_entry_campaigns() -> list[int]:
    return list(Campaign.objects.filter(status=Campaign.Status.RUNNING, schedule_kind=Campaign.ScheduleKind.ON_ENTRY,
                                        segment__isnull=False).values_list("pk", flat=True))


def run_entries(*, campaign_id: int, now: datetime, clock: Clock) -> dict:
    """Send once per `entered` change after the campaign's cursor, then move the cursor.

    A crash before the cursor moves replays the same changes: their Send rows (occasion
    "entry:<change id>") make the replay skip the sent ones and flag the in-flight one."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.RUNNING or campaign.segment_id is None:
        return {"status": "not_running"}
    changes = list(MembershipChange.objects.filter(segment_id=campaign.segment_id, id__gt=campaign.entry_cursor)
                   .order_by("id")[:ENTRY_BATCH])
    totals = {"status": "done", "entries": 0, "sent": 0, "suppressed": 0, "failed": 0, "unknown": 0}
    if not changes:
        return totals
    entered = [c for c in changes if c.change == MembershipChange.Change.ENTERED]
    for change in entered:
        sending.assignments_ensure(campaign=campaign, customer_ids=[change.customer_id], now=change.at)
    if campaign.channel == Campaign.Channel.EMAIL:
        for change in entered:
            result = sending.run_occasion(campaign_id=campaign.pk, occasion=f"entry:{change.pk}", now=now, clock=clock,
                                          only_ids=[change.customer_id])
            if result.status in ("busy", "not_running"):
                return totals | {"status": result.status}  # cursor stays: the next tick retries
            totals["entries"] += 1
            for key in ("sent", "suppressed", "failed", "unknown"):
                totals[key] += getattr(result, key)
    Campaign.objects.filter(pk=campaign.pk, entry_cursor__lt=changes[-1].pk).update(entry_cursor=changes[-1].pk)
    if len(changes) == ENTRY_BATCH:
        totals["status"] = "more"
    return totals


def tick(*, now: datetime) -> dict:
    paused = campaigns_segment_gone(now=now)
    return {"schema": connection.schema_name, "paused": paused, "occasions": due_occasions(now=now),
            "on_entry": on_entry_campaigns()}
