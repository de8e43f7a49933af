"""KPI actuals of plays and treatment-vs-holdout results of campaigns, computed from data.

Definitions (the window is [starts_on 00:00 UTC, min(ends_on + 1 day, now)) ):
- feature adoption / lead-to-opportunity: of the customers who were in the segment at any
  moment of the window, the share who did `kpi_event` inside the window;
- custom: of those customers, the share who did `kpi_event` within `kpi_days` of their
  anchor = the later of entering the segment and the window's start;
- churn rate: of the members at the window's start, the share with no event at all in the
  last `churn_inactivity_days` (customers.MetricsSettings, the same rule as the metrics
  pages) before the window's end;
- conversion rate: of the customers the play's campaigns sent to, the share who did the
  goal event (`kpi_event`, else each campaign's goal) within `kpi_days` (else the
  campaign's goal_days) of their send;
- CAC: spend / customers of the segment (in it during the window) who signed up inside
  the window (signed_up_at, else created_at).
Lower is better for churn and CAC; `met` compares with the target accordingly.

Campaign results are intention-to-treat: every assigned customer counts in their arm,
whether or not a message reached them (no consent, capped), and converts if the goal
event happened within goal_days of their assignment. Holdout members are assigned but
never sent, so the comparison is unbiased; the per-send numbers are reported beside it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from django.db import connection

from campaigns import lift
from campaigns.models import Play
from campaigns.selectors import campaign_results
from customers.models import MetricsSettings

LOWER_IS_BETTER = {Play.Kpi.CHURN_RATE, Play.Kpi.CAC}


def window(play: Play, now: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(play.starts_on, time.min, tzinfo=timezone.utc) if play.starts_on else now - timedelta(days=30)
    end = now
    if play.ends_on:
        end = min(now, datetime.combine(play.ends_on + timedelta(days=1), time.min, tzinfo=timezone.utc))
    return start, max(start, end)


def _one(sql: str, params: list) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


_IN_WINDOW = ("SELECT DISTINCT customer_id FROM segments_membership WHERE segment_id = %s AND entered_at < %s "
              "AND (exited_at IS NULL OR exited_at > %s)")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def play_kpi_actual(*, play: Play, now: datetime) -> dict:
    start, end = window(play, now)
    value = numerator = denominator = None
    segment_id = play.segment_id
    if play.kpi in (Play.Kpi.FEATURE_ADOPTION, Play.Kpi.LEAD_TO_OPPORTUNITY) and segment_id:
        denominator, numerator = _one(
            f"WITH m AS ({_IN_WINDOW}) SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM customers_event e "
            "WHERE e.customer_id = m.customer_id AND e.name = %s AND e.timestamp >= %s AND e.timestamp < %s)) FROM m",
            [segment_id, end, start, play.kpi_event, start, end])
        value = _ratio(numerator, denominator)
    elif play.kpi == Play.Kpi.CUSTOM and segment_id:
        denominator, numerator = _one(
            "WITH a AS (SELECT customer_id, GREATEST(min(entered_at), %s) AS anchor FROM segments_membership "
            "WHERE segment_id = %s AND entered_at < %s AND (exited_at IS NULL OR exited_at > %s) GROUP BY customer_id) "
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM customers_event e WHERE "
            "e.customer_id = a.customer_id AND e.name = %s AND e.timestamp >= a.anchor "
            "AND e.timestamp < a.anchor + %s)) FROM a",
            [start, segment_id, end, start, play.kpi_event, timedelta(days=play.kpi_days or 0)])
        value = _ratio(numerator, denominator)
    elif play.kpi == Play.Kpi.CHURN_RATE and segment_id:

        settings = MetricsSettings.objects.first()
        inactivity = timedelta(days=settings.churn_inactivity_days if settings else 30)
        denominator, numerator = _one(
            "WITH m AS (SELECT DISTINCT customer_id FROM segments_membership WHERE segment_id = %s AND entered_at <= %s "
            "AND (exited_at IS NULL OR exited_at > %s)) SELECT count(*), count(*) FILTER (WHERE NOT EXISTS ("
            "SELECT 1 FROM customers_event e WHERE e.customer_id = m.customer_id AND e.timestamp >= %s "
            "AND e.timestamp < %s)) FROM m",
            [segment_id, start, start, end - inactivity, end])
        value = _ratio(numerator, denominator)
    elif play.kpi == Play.Kpi.CONVERSION_RATE:
        denominator, numerator = _one(
            "WITH s AS (SELECT s.customer_id, min(s.sent_at) AS sent_at, "
            "COALESCE(NULLIF(%s, ''), min(c.goal_event)) AS goal, "
            "COALESCE(%s, min(c.goal_days)) AS days FROM campaigns_send s "
            "JOIN campaigns_campaign c ON c.id = s.campaign_id WHERE c.play_id = %s AND s.status = 'sent' "
            "AND s.sent_at >= %s AND s.sent_at < %s GROUP BY s.customer_id) "
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM customers_event e WHERE "
            "e.customer_id = s.customer_id AND e.name = s.goal AND e.timestamp >= s.sent_at "
            "AND e.timestamp < s.sent_at + make_interval(days => s.days))) FROM s",
            [play.kpi_event, play.kpi_days, play.pk, start, end])
        value = _ratio(numerator, denominator)
    elif play.kpi == Play.Kpi.CAC and segment_id:
        (numerator,) = _one(
            f"WITH m AS ({_IN_WINDOW}) SELECT count(*) FROM m JOIN customers_customer c ON c.id = m.customer_id "
            "WHERE COALESCE(c.signed_up_at, c.created_at) >= %s AND COALESCE(c.signed_up_at, c.created_at) < %s",
            [segment_id, end, start, start, end])
        denominator = numerator
        value = float(play.spend) / numerator if play.spend is not None and numerator else None
    target = float(play.target) if play.target is not None else None
    met = None
    if value is not None and target is not None:
        met = value <= target if play.kpi in LOWER_IS_BETTER else value >= target
    return {"kpi": play.kpi, "value": value, "numerator": numerator, "denominator": denominator, "target": target,
            "met": met, "window": [start.isoformat(), end.isoformat()]}


def play_results(*, play: Play, now: datetime) -> dict:
    """The play's campaigns measured together: each campaign's treatment and holdout arms
    (as in campaign_results, with its own goal) summed into one comparison. Pooling sums
    assignments, so a customer in two of the play's campaigns counts in each; campaigns
    without a goal event measure nothing and are listed without numbers."""
    campaigns = []
    totals = {"treatment_n": 0, "treatment_conversions": 0, "holdout_n": 0, "holdout_conversions": 0}
    for campaign in play.campaigns.order_by("created_at", "id"):
        result = campaign_results(campaign=campaign, now=now) if campaign.goal_event else None
        if result:
            for key in totals:
                totals[key] += result["overall"][key]
        campaigns.append({"campaign": campaign, "results": result})
    return {"overall": lift.lift(**totals).as_dict(), "campaigns": campaigns}
