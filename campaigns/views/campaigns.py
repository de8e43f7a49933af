"""The campaign pages (HTML + htmx partials): the list, the editor (create / edit) with a
preview for one customer, a campaign's detail with launch / pause / cancel. The results
page is campaigns/views/results.py, webhook destinations campaigns/views/webhooks.py.

Thin views (house rule 3): parse the form, call one service or selector with
`request.membership` as the actor, render. The services validate, audit and transition;
their problems come back by path and are shown at the field they belong to.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import display, forms, personalisation, selectors
from campaigns.models import Campaign, Play
from campaigns.services.campaigns import (
    CHANNEL_FIELDS, MAX_VARIANTS, campaign_cancel, campaign_create, campaign_launch, campaign_pause, campaign_preview, campaign_update,
)
from common.errors import CampaignCode, Code, DomainError, Problem
from common.pages import page_status, refuse_forbidden, requires
from customers.models import Customer
from segments.models import Segment
from segments.selectors.directory import people_and_departments

LIST_PAGE = 50
FINISHED = {Campaign.Status.COMPLETED, Campaign.Status.CANCELLED}


# ----------------------------------------------------------------------------- helpers


def campaign_or_404(pk: int) -> Campaign:
    """A campaign of this workspace (the schema is the tenant's: another's id is unknown)."""
    campaign = Campaign.objects.select_related("segment", "play").filter(pk=pk).first()
    if campaign is None:
        raise Http404("No campaign has this id.")
    return campaign


def summary(campaign: Campaign) -> dict:
    return {"campaign": campaign, "status_badge": display.STATUS_BADGES.get(campaign.status, "badge-slate"),
            "schedule_text": display.schedule_summary(campaign.schedule),
            "segment_deleted": campaign.segment_id is None}


# ----------------------------------------------------------------------------- list


@requires("campaigns.view")
@require_GET
def campaigns_list(request):
    query, problems = selectors.campaign_query(request.GET)
    page = Paginator(selectors.campaign_list(query=query), LIST_PAGE).get_page(request.GET.get("page"))
    ids = [c.pk for c in page]
    counts, assigned = selectors.send_summaries(campaign_ids=ids), selectors.assignment_counts(campaign_ids=ids)
    rows = [{**summary(c), "sends": counts.get(c.pk, {}), "assigned": assigned.get(c.pk, 0)} for c in page]
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(request, "campaigns/list.html", {
        "rows": rows, "page": page, "query": query, "problems": problems, "params": params,
        "statuses": Campaign.Status.choices, "channels": Campaign.Channel.choices,
        "segments": selectors.visible_segments(request.membership), "can_edit": request.membership.has("campaigns.edit"),
    }, status=400 if problems else 200)


# ----------------------------------------------------------------------------- editor


def _padded(rows: list[forms.VariantRow]) -> list[forms.VariantRow]:
    return rows + [forms.VariantRow() for _ in range(MAX_VARIANTS - len(rows))]


def _editor_context(request, campaign: Campaign | None, *, values: dict, rows, problems: list[Problem]) -> dict:
    channel = values.get("channel") or (campaign.channel if campaign else "")
    placed = forms.place_problems(problems, channel, rows)
    return {
        "campaign": campaign, "is_new": campaign is None, "values": values, "rows": _padded(rows),
        "shown_rows": len(rows), "errors": placed, "problems": problems, "form_problems": placed.get("", []),
        "locked": bool(campaign and campaign.launched_at), "finished": bool(campaign and campaign.status in FINISHED),
        "segments": selectors.visible_segments(request.membership), "plays": Play.objects.order_by("name"),
        "channels": Campaign.Channel.choices, "schedule_kinds": Campaign.ScheduleKind.choices,
        "weekdays": list(enumerate(forms.WEEKDAYS)), "max_variants": MAX_VARIANTS,
    }


def _editor(request, campaign: Campaign | None):
    if request.method == "GET":
        values = forms.initial_values(campaign)
        rows = forms.rows_of(campaign) if campaign else []
        return render(request, "campaigns/editor.html",
                      _editor_context(request, campaign, values=values, rows=rows, problems=[]))
    fields, rows = forms.campaign_fields(request.POST, campaign=campaign)
    try:
        forms.ensure_no_nul(request.POST)
        if campaign is None:
            saved = campaign_create(actor=request.membership, **fields)
        else:
            saved = campaign_update(actor=request.membership, campaign=campaign, **fields)
    except DomainError as error:
        refuse_forbidden(error)
        context = _editor_context(request, campaign, values=forms.posted_values(request.POST), rows=rows,
                                  problems=error.problems)
        return render(request, "campaigns/editor.html", context, status=page_status(error))
    messages.success(request, f"Saved “{saved.name}”." + (" Launch it when it is ready." if
                                                         saved.status == Campaign.Status.DRAFT else ""))
    return redirect("campaigns_detail", pk=saved.pk)


@requires("campaigns.edit")
@require_http_methods(["GET", "POST"])
def campaigns_new(request):
    return _editor(request, None)


@requires("campaigns.edit")
@require_http_methods(["GET", "POST"])
def campaigns_edit(request, pk: int):
    return _editor(request, campaign_or_404(pk))


# ----------------------------------------------------------------------------- preview


def _preview_customer(post) -> tuple[Customer | None, list[Problem]]:
    external_id = post.get("preview_external_id", "").strip()
    chosen = post.get("preview_customer", "").strip()
    if external_id:
        customer = Customer.objects.filter(external_id=external_id[:255]).first()
        return customer, [] if customer else [Problem("preview_external_id", Code.UNKNOWN_CUSTOMER,
                                                      "No customer has this external id.")]
    if chosen:
        customer = Customer.objects.filter(pk=int(chosen)).first() if chosen.isdigit() and len(chosen) < 19 else None
        return customer, [] if customer else [Problem("preview_customer", Code.UNKNOWN_CUSTOMER,
                                                      "No such customer in this workspace.")]
    return None, []


def _draft(request, campaign: Campaign | None) -> Campaign:
    """What to preview: the editor's unsaved fields when it sent them, else the saved campaign."""
    if "preview_draft" not in request.POST and campaign is not None:
        return campaign
    fields, _ = forms.campaign_fields(request.POST, campaign=campaign)
    segment_id = fields.get("segment_id", campaign.segment_id if campaign else None)
    segment = (Segment.objects.filter(pk=segment_id).first()
               if isinstance(segment_id, int) and request.membership.has("segments.view") else None)
    return Campaign(pk=campaign.pk if campaign else None, channel=fields.get("channel") or "",
                    content=fields["content"], variants=fields.get("variants", campaign.variants if campaign else []),
                    segment=segment)


@requires("campaigns.view")
@require_POST
def campaigns_preview(request):
    """The message rendered for one customer (a member of the segment, or any by external
    id; the segment's first member by default), for htmx. Personal data is the sample's for
    roles without customers.view_pii (campaign_preview decides). Writes nothing."""
    try:
        forms.ensure_no_nul(request.POST)
    except DomainError as error:
        return render(request, "campaigns/_preview.html", {"problems": error.problems}, status=400)
    pk = request.POST.get("campaign", "")
    campaign = campaign_or_404(int(pk)) if pk.isdigit() and len(pk) < 19 else None
    draft = _draft(request, campaign)
    customer, problems = _preview_customer(request.POST)
    variant = request.POST.get("preview_variant", "")
    overrides = {v.get("key"): v.get("content") or {} for v in draft.variants or [] if isinstance(v, dict)}
    if variant and variant not in overrides:
        problems.append(Problem("preview_variant", CampaignCode.UNKNOWN_VARIANT, "No such variant in this campaign."))
    # An unsaved draft may lack a subject or not compile: say so at its field, as saving would.
    problems += personalisation.compile_content({**(draft.content or {}), **overrides.get(variant, {})},
                                          CHANNEL_FIELDS.get(draft.channel, ()))
    rendered = {}
    if not problems:
        try:
            rendered = campaign_preview(actor=request.membership, campaign=draft, customer=customer, variant=variant)
        except DomainError as error:
            refuse_forbidden(error)
            problems = error.problems
    can_see_pii = request.membership.has("customers.view_pii")
    return render(request, "campaigns/_preview.html", {
        "rendered": rendered, "problems": problems, "channel": draft.channel, "draft": draft,
        # Members are listed only to those who may see the segment (a saved campaign's is not re-checked above).
        "customers": selectors.preview_customers(segment=draft.segment if request.membership.has("segments.view")
                                              else None), "can_see_pii": can_see_pii,
        "chosen": request.POST.get("preview_customer", ""), "external_id": request.POST.get("preview_external_id", ""),
        "variant": variant, "variant_keys": [v.get("key") for v in draft.variants or [] if v.get("key")],
        "customer": customer,
    }, status=400 if problems else 200)


# ----------------------------------------------------------------------------- detail


def detail_context(request, campaign: Campaign, **extra) -> dict:
    owners, _ = people_and_departments(owner_ids={campaign.owner_id} if campaign.owner_id else set(),
                                       department_ids=set())
    membership = request.membership
    status = campaign.status
    history = selectors.campaign_history(campaign=campaign)
    return {
        **summary(campaign), "owner": owners.get(campaign.owner_id), "history": history,
        "can_edit": membership.has("campaigns.edit") and status not in FINISHED,
        "can_launch": membership.has("campaigns.launch"), "can_export": membership.has("data.export"),
        "may_launch": status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED) and campaign.segment_id is not None,
        "may_pause": status in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING),
        "may_cancel": status not in FINISHED,
        "content_fields": [(label, (campaign.content or {}).get(key)) for label, key in (
            ("Subject", "subject"), ("Title", "title"), ("Body", "body"), ("Call to action", "cta_label"),
            ("Call-to-action link", "cta_url")) if (campaign.content or {}).get(key)],
        "variant_fields": forms.VARIANT_INPUTS.get(campaign.channel, ()),
        **extra,
    }


@requires("campaigns.view")
@require_GET
def campaigns_detail(request, pk: int):
    return render(request, "campaigns/detail.html", detail_context(request, campaign_or_404(pk)))


def _transition(request, pk: int, act, done: str):
    """Run one audited transition; a refusal (409 invalid_transition, segment_deleted, …)
    re-renders the page with the code and status, and changes nothing."""
    campaign = campaign_or_404(pk)
    try:
        act(campaign)
    except DomainError as error:
        refuse_forbidden(error)
        context = detail_context(request, campaign, action_error={"status": page_status(error), "problems": error.problems})
        return render(request, "campaigns/detail.html", context, status=page_status(error))
    messages.success(request, done)
    return redirect("campaigns_detail", pk=pk)


@requires("campaigns.launch")
@require_POST
def campaigns_launch(request, pk: int):
    return _transition(request, pk, lambda c: campaign_launch(actor=request.membership, campaign=c,
                                                              now=timezone.now()),
                       "Launched. Sending starts at the next occasion of its schedule.")


@requires("campaigns.launch")
@require_POST
def campaigns_pause(request, pk: int):
    reason = request.POST.get("reason", "").strip()[:300]
    return _transition(request, pk, lambda c: campaign_pause(actor=request.membership, campaign=c, reason=reason),
                       "Paused. Nothing more is sent until it is launched again.")


@requires("campaigns.launch")
@require_POST
def campaigns_cancel(request, pk: int):
    return _transition(request, pk, lambda c: campaign_cancel(actor=request.membership, campaign=c,
                                                              now=timezone.now()),
                       "Cancelled for good. Its results are kept.")
