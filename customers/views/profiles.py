"""The customer pages: the directory (search, filters, sort, pages; its table is an htmx
partial), one profile (traits by category, timeline, answers, consent, metrics) and the
privacy actions (export, anonymise, delete).

Thin views (house rule 3): parse the query or form, call selectors or one service with
`request.membership` as the actor, render. Personal data is masked here, at the edge,
for members without `customers.view_pii`; search never matches what they cannot read.
"""

from __future__ import annotations

import json
import re

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from common.errors import DomainError
from common.masking import mask_email, mask_name, mask_properties
from common.pages import page_status, refuse_forbidden, requires
from customers.forms import MAX_PAGE, SEEN_CHOICES, ConfirmForm, DirectoryForm
from customers.models import Customer
from customers.privacy import customer_anonymise, customer_export
from customers.selectors import (
    DEFAULT_SORT, SORTS, customer_consents, customer_directory, customer_event_count, personal_property_keys,
    customer_events_page, customer_get, customer_identities, customer_metrics, customer_survey_responses,
    customer_traits_by_category, decode_cursor, directory_choices, directory_page, pii_trait_keys,
)
from customers.services import customer_delete

HIDDEN = "Hidden"
# List columns that can be filtered, by the query's field name → the trait they read.
_FILTER_TRAITS = {"country": "country", "plan": "plan", "industry": "industry"}


# ----------------------------------------------------------------------------- helpers


def _hidden_keys(request) -> frozenset[str]:
    """Trait keys this member may not read (empty with customers.view_pii)."""
    return frozenset() if request.membership.has("customers.view_pii") else pii_trait_keys()


def _identity(customer: Customer, hidden: frozenset[str]) -> dict:
    """Display name and email as this member may see them."""
    email, name = customer.email, customer.name
    if "email" in hidden:
        email = mask_email(email)
    if "name" in hidden:
        name = mask_name(name)
    return {"email": email, "name": name, "title": name or email or customer.external_id}


def _customer_or_404(external_id: str) -> Customer:
    customer = customer_get(external_id=external_id)
    if customer is None:
        raise Http404("No customer has this external id.")
    return customer


def _problem_status(error: DomainError) -> int:
    refuse_forbidden(error)
    return page_status(error)


# ----------------------------------------------------------------------------- directory


def _directory_context(request) -> tuple[dict, int]:
    form = DirectoryForm(request.GET)
    form.is_valid()
    problems = form.problems()
    query = form.query()
    hidden = _hidden_keys(request)
    # A filter on a column the registry marks as personal would reveal it row by row.
    for field, trait in _FILTER_TRAITS.items():
        if trait in hidden and getattr(query, field):
            problems.append(f"{form.fields[field].label}: this trait is personal data; your role cannot filter on it.")
            query = type(query)(**{**query.__dict__, field: ""})
    can_see_pii = not hidden
    if query.search and not can_see_pii and "@" in query.search:
        problems.append("Search: your role cannot search by email address; search by external id instead.")
    queryset = customer_directory(query=query, can_see_pii=can_see_pii, now=timezone.now())
    page = directory_page(queryset=queryset, number=form.page_number(), filtered=query.filtered)
    rows = [{"customer": c, **_identity(c, hidden),
             **{key: (HIDDEN if key in hidden else getattr(c, key)) for key in ("country", "plan", "company")}}
            for c in page.customers]
    # The query as the address bar shows it: no page (links add it), no default sort.
    params = {k: v for k, v in request.GET.items() if v and k != "page" and (k, v) != ("sort", DEFAULT_SORT)}
    context = {
        "form": form, "query": query, "page": page, "rows": rows, "problems": problems,
        "can_see_pii": can_see_pii, "choices": directory_choices(), "seen_choices": _seen_choices(query),
        "sort_links": _sort_links(params, query.sort), "page_links": _page_links(params, page),
        "query_string": _encode(params), "max_page": MAX_PAGE, "section": "customers",
    }
    return context, 400 if problems else 200


def _seen_choices(query) -> list[tuple[str, str]]:
    days = query.seen_within_days
    if days is None or str(days) in dict(SEEN_CHOICES):
        return SEEN_CHOICES
    return [*SEEN_CHOICES, (str(days), f"Last {days} days")]  # a value typed into the URL


def _encode(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(sorted(params.items()))


def _sort_links(params: dict, current: str) -> dict[str, dict]:
    """Per sortable column: the query that sorts by it (toggling direction) and its state."""
    links = {}
    for name in SORTS:
        state = "asc" if current == name else ("desc" if current == f"-{name}" else "")
        # First click sorts dates newest first and text A→Z; a second click flips it.
        first = f"-{name}" if name in ("last_seen", "created") else name
        target = {"asc": f"-{name}", "desc": name}.get(state, first)
        links[name] = {"query": _encode({**params, "sort": target}), "state": state}
    return links


def _page_links(params: dict, page) -> dict:
    return {
        "previous": _encode({**params, "page": page.number - 1}) if page.has_previous else None,
        "next": _encode({**params, "page": page.number + 1}) if page.has_next and page.number < MAX_PAGE else None,
    }


@requires("customers.view")
@require_GET
def customers_list(request):
    context, status = _directory_context(request)
    return render(request, "customers/list.html", context, status=status)


@requires("customers.view")
@require_GET
def customers_table(request):
    """The list's table alone, for htmx: the address bar follows the full page's URL."""
    context, status = _directory_context(request)
    response = render(request, "customers/_table.html", context, status=status)
    query = context["query_string"]
    page = context["page"].number
    if page > 1:
        query = f"{query}&page={page}" if query else f"page={page}"
    response["HX-Push-Url"] = reverse("customers_list") + (f"?{query}" if query else "")
    return response


# ----------------------------------------------------------------------------- profile


def _event_rows(request, events) -> list[dict]:
    hidden = _hidden_keys(request)
    hidden_props = personal_property_keys() if hidden else frozenset()
    rows = []
    for event in events:
        properties = mask_properties(event.properties, hidden_props) if hidden_props else event.properties
        rows.append({"event": event, "properties": properties,
                     "properties_json": json.dumps(properties, indent=2, sort_keys=True, cls=DjangoJSONEncoder,
                                                   ensure_ascii=False) if properties else ""})
    return rows


def _profile_context(request, customer: Customer) -> dict:
    hidden = _hidden_keys(request)
    groups = customer_traits_by_category(customer=customer)
    for group in groups:
        group.rows = [{"trait": t, "hidden": t.key in hidden,
                       "display": _trait_display(t.key, t.value, hidden)} for t in group.traits]
    timeline = customer_events_page(customer=customer)
    membership = request.membership
    return {
        "customer": customer, "identity": _identity(customer, hidden), "can_see_pii": not hidden,
        "header_badges": [(key, getattr(customer, key)) for key in ("plan", "country", "company")
                          if getattr(customer, key) and key not in hidden],
        "trait_groups": groups, "identities": customer_identities(customer=customer),
        "timeline": timeline, "event_rows": _event_rows(request, timeline.events),
        "event_count": customer_event_count(customer=customer),
        "responses": customer_survey_responses(customer=customer),
        "consents": customer_consents(customer=customer), "metrics": customer_metrics(customer=customer),
        "can_export": membership.has("data.export") and membership.has("customers.view_pii"),
        "can_edit": membership.has("customers.edit"), "section": "customers",
    }


def _trait_display(key: str, value, hidden: frozenset[str]) -> str:
    if key in hidden:
        if key == "email":
            return mask_email(value)
        if key == "name":
            return mask_name(value)
        return HIDDEN
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.strftime("%Y-%m-%d %H:%M UTC") if hasattr(value, "hour") else value.isoformat()
    return str(value)


@requires("customers.view")
@require_GET
def customer_detail(request, external_id: str):
    customer = _customer_or_404(external_id)
    if customer.external_id != external_id:  # an id merged into this profile
        return redirect("customer_detail", external_id=customer.external_id)
    return render(request, "customers/detail.html", _profile_context(request, customer))


@requires("customers.view")
@require_GET
def customer_events(request, external_id: str):
    """One page of older events ("Load older"), for htmx; `before` is the last row's cursor."""
    customer = _customer_or_404(external_id)
    raw = request.GET.get("before", "")
    before = decode_cursor(raw) if raw else None
    if raw and before is None:
        return render(request, "customers/_events.html", {
            "customer": customer, "event_rows": [], "timeline": None,
            "error": "This page link is not valid any more. Reload the profile to see the latest events.",
        }, status=400)
    timeline = customer_events_page(customer=customer, before=before)
    return render(request, "customers/_events.html", {
        "customer": customer, "timeline": timeline, "event_rows": _event_rows(request, timeline.events), "paged": True})


# ----------------------------------------------------------------------------- privacy


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@requires("data.export")
@require_POST
def customer_export_view(request, external_id: str):
    """Everything about the customer as a JSON download (needs customers.view_pii too)."""
    customer = _customer_or_404(external_id)
    try:
        document = customer_export(actor=request.membership, customer=customer)
    except DomainError as error:
        return HttpResponse(error.problems[0].message, status=_problem_status(error))
    response = HttpResponse(json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    safe = _UNSAFE_FILENAME.sub("_", customer.external_id)[:80] or "customer"
    response["Content-Disposition"] = f'attachment; filename="customer-{safe}.json"'
    return response


def _confirmed(request, customer: Customer, action: str):
    """The bound confirmation form, or the profile re-rendered with its error (400)."""
    form = ConfirmForm(request.POST, external_id=customer.external_id)
    if form.is_valid():
        return form, None
    context = _profile_context(request, customer)
    context.update(confirm_action=action, confirm_errors=[e for errors in form.errors.values() for e in errors])
    return form, render(request, "customers/detail.html", context, status=400)


@requires("customers.edit")
@require_POST
def customer_anonymise_view(request, external_id: str):
    customer = _customer_or_404(external_id)
    _, failed = _confirmed(request, customer, "anonymise")
    if failed:
        return failed
    try:
        customer = customer_anonymise(actor=request.membership, customer=customer, now=timezone.now())
    except DomainError as error:
        return HttpResponse(error.problems[0].message, status=_problem_status(error))
    messages.success(request, f"Customer anonymised. Their new id is {customer.external_id}.")
    return redirect("customer_detail", external_id=customer.external_id)


@requires("customers.edit")
@require_POST
def customer_delete_view(request, external_id: str):
    customer = _customer_or_404(external_id)
    _, failed = _confirmed(request, customer, "delete")
    if failed:
        return failed
    deleted_id = customer.external_id
    try:
        customer_delete(actor=request.membership, customer=customer)
    except DomainError as error:
        return HttpResponse(error.problems[0].message, status=_problem_status(error))
    messages.success(request, f"Customer {deleted_id} was deleted with their events, answers and consent.")
    return redirect("customers_list")
