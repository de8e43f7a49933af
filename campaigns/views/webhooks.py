"""Webhook destination pages: the list, create (the signing secret is shown once, on the
page that answers the creation), a destination's page with its settings, "Send test" and
the delivery log (keyset pages, newest first).

Thin views over campaigns.services (webhook_endpoint_create / _update / webhook_send_test):
the SSRF guard, event choices and segment checks live there and answer with coded problems.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from campaigns import display, forms, selectors
from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.services.endpoints import webhook_endpoint_create, webhook_endpoint_update, webhook_send_test
from common.errors import Code, DomainError, Problem
from common.pages import page_status, refuse_forbidden, requires


def _endpoint_or_404(pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_related("segment").filter(pk=pk).first()
    if endpoint is None:
        raise Http404("No webhook destination has this id.")
    return endpoint


def _errors(problems: list[Problem]) -> dict[str, list[Problem]]:
    placed: dict[str, list[Problem]] = {}
    for problem in problems:
        name = {"segment_id": "segment"}.get(problem.path, problem.path)
        placed.setdefault(name if name in ("url", "events", "segment", "active") else "", []).append(problem)
    return placed


def _list_context(request, **extra) -> dict:
    return {"endpoints": list(WebhookEndpoint.objects.select_related("segment")[:200]),
            "segments": selectors.visible_segments(request.membership), "event_choices": forms.EVENT_CHOICES,
            "can_edit": request.membership.has("campaigns.edit"), "values": {"events": ["entered", "exited"]},
            "errors": {}, **extra}


@requires("campaigns.view")
@require_GET
def campaigns_webhooks(request):
    return render(request, "campaigns/webhooks.html", _list_context(request))


@requires("campaigns.edit")
@require_POST
def campaigns_webhook_new(request):
    fields = forms.webhook_fields(request.POST)
    try:
        forms.ensure_no_nul(request.POST)
        endpoint = webhook_endpoint_create(actor=request.membership, **fields)
    except DomainError as error:
        refuse_forbidden(error)
        context = _list_context(request, errors=_errors(error.problems), problems=error.problems,
                                values={"url": fields["url"], "events": fields["events"],
                                        "segment": request.POST.get("segment", "")}, form_open=True)
        return render(request, "campaigns/webhooks.html", context, status=page_status(error))
    # TRICKY: the secret is shown on this answer only (not after a redirect): reloading
    # the destination's page never shows it again. The API still hands it to editors.
    return render(request, "campaigns/webhook_created.html", {"endpoint": endpoint}, status=201)


def _detail_context(request, endpoint: WebhookEndpoint, **extra) -> dict:
    status = request.GET.get("status", "")
    problems = []
    if status and status not in WebhookDelivery.Status.values:
        problems.append(Problem("status", Code.INVALID_CHOICE,
                                f"Status is one of {', '.join(WebhookDelivery.Status.values)}."))
        status = ""
    deliveries, older = selectors.delivery_page(endpoint=endpoint, status=status, before=request.GET.get("before", ""))
    return {"endpoint": endpoint, "event_choices": forms.EVENT_CHOICES,
            "deliveries": [{"delivery": d, "badge": display.DELIVERY_BADGES.get(d.status, "badge-slate")}
                           for d in deliveries],
            "log_older": older, "log_status": status, "log_before": request.GET.get("before", ""),
            "delivery_statuses": WebhookDelivery.Status.choices, "can_edit": request.membership.has("campaigns.edit"),
            "values": {"url": endpoint.url, "events": endpoint.events}, "errors": {}, "problems": problems,
            "secret_hint": endpoint.secret[:10] + "…", **extra}


@requires("campaigns.view")
@require_GET
def campaigns_webhook_detail(request, pk: int):
    context = _detail_context(request, _endpoint_or_404(pk))
    return render(request, "campaigns/webhook_detail.html", context, status=400 if context["problems"] else 200)


@requires("campaigns.edit")
@require_POST
def campaigns_webhook_edit(request, pk: int):
    endpoint = _endpoint_or_404(pk)
    fields = forms.webhook_fields(request.POST)
    active = request.POST.get("active")
    # The URL goes to the service only when it changed: the guard re-checks a new URL, and a
    # stored one it would now refuse can still have its events edited or be switched off.
    changes = {"url": fields["url"] if fields["url"] != endpoint.url else None, "events": fields["events"]}
    if active in ("0", "1"):
        changes = {"active": active == "1"}  # the on/off button sends only this
    try:
        forms.ensure_no_nul(request.POST)
        webhook_endpoint_update(actor=request.membership, endpoint=endpoint, **changes)
    except DomainError as error:
        refuse_forbidden(error)
        context = _detail_context(request, endpoint, errors=_errors(error.problems), problems=error.problems,
                                  values={"url": fields["url"], "events": fields["events"]})
        return render(request, "campaigns/webhook_detail.html", context, status=page_status(error))
    messages.success(request, "Destination saved.")
    return redirect("campaigns_webhook_detail", pk=pk)


@requires("campaigns.edit")
@require_POST
def campaigns_webhook_test(request, pk: int):
    """POST a signed `webhook.test` now and show what came back (an SSRF refusal with its
    code). Nothing is stored: the delivery log is only for real changes."""
    endpoint = _endpoint_or_404(pk)
    result = webhook_send_test(actor=request.membership, endpoint=endpoint, now=timezone.now())
    code, _, message = result["error"].partition(": ") if result["error"] else ("", "", "")
    result = {**result, "code": code, "message": message}
    if request.htmx:
        return render(request, "campaigns/_webhook_test.html", {"result": result})
    return render(request, "campaigns/webhook_detail.html", _detail_context(request, endpoint, test_result=result))
