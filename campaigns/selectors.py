"""Reads of campaigns: a campaign's results, measured against its holdout."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count

from campaigns import lift
from campaigns.models import Campaign, Send


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
