"""The practices of the maturity model (insights/reports/maturity.py), which grade
activation — campaigns' data, which only this room reads: activated (half or more of the
live segments have a play, campaign or webhook acting on them), measured (a campaign with
a holdout has run) and reviewed (a review decision in the last quarter, and no more than a
fifth of the live segments waiting in the review queue)."""

from __future__ import annotations

from datetime import datetime, timedelta

from campaigns.models import Campaign, Play, SegmentReview, WebhookEndpoint
from campaigns.review import LIVE_CAMPAIGNS, LIVE_PLAYS, review_queue
from insights.reports.maturity import MaturityReport, Practice, live_segments, maturity_report
from segments.models import Segment

QUARTER = timedelta(days=92)
STEP_FOR_PRACTICE = {
    "activated": ("Plan a play for the segments nothing acts on: an owner, a tactic and a KPI.", "plays_list",
                  "Open plays"),
    "measured": ("Launch a campaign with a holdout, so its lift is measured against customers who got nothing.",
                 "campaigns_list", "Open campaigns"),
    "reviewed": ("Work through the review queue: keep, merge or archive what no longer earns its keep.",
                 "segments_review", "Open the review queue"),
}


def workspace_maturity(*, now: datetime) -> MaturityReport:
    live = live_segments()
    return maturity_report(now=now, live=live, practices=_practices(live, now), practice_steps=STEP_FOR_PRACTICE)


def _practices(live: list[Segment], now: datetime) -> list[Practice]:
    ids = {s.pk for s in live}
    acted = (set(Play.objects.filter(status__in=LIVE_PLAYS, segment_id__in=ids).values_list("segment_id", flat=True))
             | set(Campaign.objects.filter(status__in=LIVE_CAMPAIGNS + (Campaign.Status.COMPLETED,), segment_id__in=ids)
                   .values_list("segment_id", flat=True))
             | set(WebhookEndpoint.objects.filter(segment_id__in=ids).values_list("segment_id", flat=True)))
    measured = Campaign.objects.filter(holdout_percent__gt=0, status__in=[
        Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED]).count()
    reviews = SegmentReview.objects.filter(decided_at__gte=now - QUARTER).count()
    waiting = len(review_queue(now=now))
    return [
        Practice("activated", "Activated", bool(live) and len(acted) * 2 >= len(live),
                 f"{len(acted)} of {len(live)} live segments have a play, campaign or webhook acting on them."),
        Practice("measured", "Measured", measured > 0,
                 f"{measured} campaign{'s' if measured != 1 else ''} with a holdout "
                 f"{'have' if measured != 1 else 'has'} run."),
        Practice("reviewed", "Reviewed", reviews > 0 and waiting * 5 <= len(live),
                 f"{reviews} review decision{'s' if reviews != 1 else ''} in the last quarter; {waiting} "
                 f"segment{'s' if waiting != 1 else ''} waiting in the review queue."),
    ]
