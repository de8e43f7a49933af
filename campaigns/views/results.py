"""A campaign's results page: treatment vs holdout, lift with its 95% interval and a verdict
in plain words, per variant, the send log's status counts and its pages (keyset, newest
first). The numbers are campaigns.services.campaigns.campaign_results (intention-to-treat, see
campaigns/selectors.py); this module only arranges them."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns import display, selectors
from campaigns.models import Campaign, Send
from campaigns.services.campaigns import campaign_results
from campaigns.views.campaigns import campaign_or_404, summary
from common.errors import Code, Problem
from common.masking import mask_email
from common.pages import requires


def _log_filter(request) -> tuple[str, list[Problem]]:
    status = request.GET.get("status", "")
    if status and status not in Send.Status.values:
        return "", [Problem("status", Code.INVALID_CHOICE, f"Status is one of {', '.join(Send.Status.values)}.")]
    return status, []


@requires("campaigns.view")
@require_GET
def campaigns_results(request, pk: int):
    campaign = campaign_or_404(pk)
    results = campaign_results(actor=request.membership, campaign=campaign, now=timezone.now())
    rows = display.arms(results)
    status, problems = _log_filter(request)
    sends, older = selectors.send_page(campaign=campaign, status=status, before=request.GET.get("before", ""))
    can_see_pii = request.membership.has("customers.view_pii")
    log = [{"send": s, "badge": display.SEND_BADGES.get(s.status, "badge-slate"),
            "email": s.customer.email if can_see_pii else mask_email(s.customer.email or "")} for s in sends]
    counts = results["sends"]
    return render(request, "campaigns/results.html", {
        **summary(campaign), "results": results, "overall": results["overall"], "rows": rows,
        "verdict": display.verdict(results["overall"], goal_event=results["goal_event"],
                                   holdout_percent=results["holdout_percent"]),
        "variant_verdicts": {key: display.verdict(value, goal_event=results["goal_event"],
                                                  holdout_percent=results["holdout_percent"])
                             for key, value in results["variants"].items()},
        "rate_chart": display.rate_chart(rows), "lift_chart": display.lift_chart(rows),
        "send_counts": [(value, label, counts.get(value, 0), display.SEND_BADGES[value])
                        for value, label in Send.Status.choices],
        "send_total": sum(counts.values()), "log": log, "log_status": status, "log_older": older,
        "log_before": request.GET.get("before", ""), "problems": problems, "send_statuses": Send.Status.choices,
        "can_export": request.membership.has("data.export") and campaign.channel == Campaign.Channel.AD_AUDIENCE,
    }, status=400 if problems else 200)
