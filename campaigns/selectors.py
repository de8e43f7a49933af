"""Reads of campaigns (house rule 2): the campaign list with its filters and send summaries,
a campaign's history, send and delivery pages, the segments a member may pick, preview
customers, and a campaign's results measured against its holdout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Max, Q, QuerySet

from audit.models import AuditEvent
from campaigns import lift
from campaigns.models import Assignment, Campaign, Send, WebhookDelivery
from common.actors import Actor
from common.errors import Code, Problem
from customers.models import Customer
from segments.models import Segment
from segments.selectors.members import segment_members


def campaign_results(*, campaign: Campaign, now: datetime) -> dict:
    """Conversion of treatment vs holdout (and per variant vs holdout) with lift, plus the send log."""
    arms: dict[tuple[str, str], tuple[int, int]] = {}
    if campaign.goal_event:
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT a."group", a.variant, count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM customers_event e '
                "WHERE e.customer_id = a.customer_id AND e.name = %s AND e.timestamp >= a.assigned_at "
                "AND e.timestamp < a.assigned_at + %s AND e.timestamp < %s)) FROM campaigns_assignment a "
                'WHERE a.campaign_id = %s GROUP BY a."group", a.variant',
                [campaign.goal_event, timedelta(days=campaign.goal_days), now, campaign.pk])
            arms = {(group, variant): (n, converted) for group, variant, n, converted in cursor.fetchall()}
    holdout_n, holdout_x = arms.get(("holdout", ""), (0, 0))
    treatment_n = sum(n for (g, _), (n, _x) in arms.items() if g == "treatment")
    treatment_x = sum(x for (g, _), (_n, x) in arms.items() if g == "treatment")
    overall = lift.lift(treatment_n=treatment_n, treatment_conversions=treatment_x, holdout_n=holdout_n,
                        holdout_conversions=holdout_x)
    variants = {variant: lift.lift(treatment_n=n, treatment_conversions=x, holdout_n=holdout_n,
                                   holdout_conversions=holdout_x).as_dict()
                for (group, variant), (n, x) in sorted(arms.items()) if group == "treatment" and variant}
    sends = _send_counts(campaign)
    return {"goal_event": campaign.goal_event, "goal_days": campaign.goal_days,
            "holdout_percent": float(campaign.holdout_percent), "overall": overall.as_dict(), "variants": variants,
            "sends": sends}


def _send_counts(campaign: Campaign) -> dict[str, int]:
    return {row["status"]: row["n"] for row in
            Send.objects.filter(campaign=campaign).values("status").annotate(n=Count("id")).order_by("status")}


LOG_PAGE = 50
HISTORY_ACTIONS = ("campaign.created", "campaign.updated", "campaign.launched", "campaign.paused",
                   "campaign.cancelled")


@dataclass(frozen=True)
class CampaignQuery:
    status: str = ""
    channel: str = ""
    segment_id: int | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.status or self.channel or self.segment_id)


def campaign_query(params) -> tuple[CampaignQuery, list[Problem]]:
    """The list's filters from a query string; a bad one is left out and reported."""
    problems, values = [], {}
    for name, choices in (("status", Campaign.Status.values), ("channel", Campaign.Channel.values)):
        value = params.get(name, "")
        if value and value not in choices:
            problems.append(Problem(name, Code.INVALID_CHOICE, f"{name.capitalize()} is one of {', '.join(choices)}."))
            value = ""
        values[name] = value
    segment = params.get("segment", "")
    values["segment_id"] = None
    if segment:
        if segment.isdigit() and len(segment) < 19:
            values["segment_id"] = int(segment)
        else:
            problems.append(Problem("segment", Code.INVALID_VALUE, "A segment is named by its id."))
    return CampaignQuery(**values), problems


def campaign_list(*, query: CampaignQuery) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("segment", "play")
    if query.status:
        campaigns = campaigns.filter(status=query.status)
    if query.channel:
        campaigns = campaigns.filter(channel=query.channel)
    if query.segment_id:
        campaigns = campaigns.filter(segment_id=query.segment_id)
    return campaigns


def send_summaries(*, campaign_ids: list[int]) -> dict[int, dict]:
    """Per campaign: sent, failed and suppressed counts and the last claim, in one grouped
    query over the listed page (campaigns_send is indexed by campaign)."""
    rows = (Send.objects.filter(campaign_id__in=campaign_ids).values("campaign_id")
            .annotate(sent=Count("id", filter=Q(status=Send.Status.SENT)),
                      failed=Count("id", filter=Q(status=Send.Status.FAILED)),
                      suppressed=Count("id", filter=Q(status=Send.Status.SUPPRESSED)),
                      last=Max("claimed_at"))
            .order_by())
    return {row["campaign_id"]: row for row in rows}


def assignment_counts(*, campaign_ids: list[int]) -> dict[int, int]:
    """Customers assigned per campaign (both arms): what an in-app campaign, which sends
    nothing (the app pulls), has reached so far."""
    return dict(Assignment.objects.filter(campaign_id__in=campaign_ids).values("campaign_id")
                .annotate(n=Count("id")).order_by().values_list("campaign_id", "n"))


def campaign_history(*, campaign: Campaign, limit: int = 50) -> list[AuditEvent]:
    """Created, edited, launched, paused and cancelled, newest first (the services audit each)."""
    return list(AuditEvent.objects.filter(target_type="campaigns.campaign", target_id=str(campaign.pk),
                                          action__in=HISTORY_ACTIONS)[:limit])


def _before(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def send_page(*, campaign: Campaign, status: str = "", before: str = "") -> tuple[list[Send], int | None]:
    """Up to LOG_PAGE sends older than the id `before`, newest first, and the next cursor."""
    sends = Send.objects.filter(campaign=campaign).select_related("customer").order_by("-id")
    if status:
        sends = sends.filter(status=status)
    if (cursor := _before(before)) is not None:
        sends = sends.filter(id__lt=cursor)
    rows = list(sends[:LOG_PAGE + 1])
    return rows[:LOG_PAGE], rows[LOG_PAGE - 1].pk if len(rows) > LOG_PAGE else None


def delivery_page(*, endpoint, status: str = "", before: str = "") -> tuple[list[WebhookDelivery], int | None]:
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-id")
    if status:
        deliveries = deliveries.filter(status=status)
    if (cursor := _before(before)) is not None:
        deliveries = deliveries.filter(id__lt=cursor)
    rows = list(deliveries[:LOG_PAGE + 1])
    return rows[:LOG_PAGE], rows[LOG_PAGE - 1].pk if len(rows) > LOG_PAGE else None


def visible_segments(actor: Actor) -> QuerySet[Segment]:
    """The segments the editor offers: none without segments.view (the service refuses them too)."""
    if not actor.has("segments.view"):
        return Segment.objects.none()
    return Segment.objects.exclude(status=Segment.Status.ARCHIVED).order_by("name")


def preview_customers(*, segment: Segment | None, limit: int = 20) -> list[Customer]:
    """A few members to preview a message for (lowest ids first: stable between previews)."""
    if segment is None:
        return []
    return list(segment_members(segment=segment).order_by("id")[:limit])
