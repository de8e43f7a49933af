"""One segment's page: its rule, size and history charts, versions and their diff, members
(search, pages), activation, and "why is this customer here?"."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Count
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from common.errors import Code, DomainError, Problem
from common.masking import mask_explain_tree
from common.pages import requires
from customers.models import Customer
from customers.selectors import personal_property_keys, pii_trait_keys
from segments.forms import PERSONA_FIELDS
from segments.models import Membership, Segment, SegmentEvaluation, SegmentSizeSnapshot, SegmentVersion
from segments.rules.explain import explain
from segments.selectors.directory import (
    people_and_departments,
)
from segments.selectors.facts import customer_facts
from segments.selectors.hygiene import hygiene
from segments.selectors.members import member_page, memberships_of, segment_changes
from segments.selectors.personal import definition_shown, group_shown
from segments.selectors.preview import compile_definition
from segments.selectors.versions import definition_diff
from segments.views.common import hidden_fields, segment_or_404, who
from segments.views.directory import FRESHNESS_BADGES, FRESHNESS_LABELS, KIND_BADGES, chart_option


MEMBERS_PAGE = 25
HISTORY_DAYS = 90


def _history_charts(segment: Segment, now) -> tuple[str | None, str | None]:
    since = (now - timedelta(days=HISTORY_DAYS)).date()
    days = list(SegmentSizeSnapshot.objects.filter(segment=segment, day__gte=since).order_by("day"))
    if not days:
        return None, None
    labels = [d.day.isoformat() for d in days]
    size = chart_option({
        "color": ["#3b55e6"], "tooltip": {"trigger": "axis"}, "grid": {"left": 48, "right": 16, "top": 16, "bottom": 28},
        "xAxis": {"type": "category", "data": labels, "boundaryGap": False},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "line", "name": "Members", "data": [d.size for d in days], "smooth": True,
                    "symbol": "circle", "symbolSize": 5, "areaStyle": {"color": "rgba(59,85,230,0.08)"}}],
    })
    flow = chart_option({
        "color": ["#059669", "#dc2626"], "tooltip": {"trigger": "axis"},
        "legend": {"data": ["Entered", "Exited"], "bottom": 0},
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 48},
        "xAxis": {"type": "category", "data": labels}, "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "bar", "name": "Entered", "stack": "flow", "barMaxWidth": 24, "data": [d.entered for d in days]},
                   {"type": "bar", "name": "Exited", "stack": "flow", "barMaxWidth": 24, "data": [-d.exited for d in days]}],
    })
    return size, flow


def _every(interval: timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    for size, unit in ((1440, "day"), (60, "hour")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'s' if count != 1 else ''}" if count != 1 else unit
    return f"{minutes} minutes" if minutes != 1 else "minute"


def _versions(segment: Segment) -> list[dict]:
    versions = list(SegmentVersion.objects.filter(segment=segment).order_by("-version")[:50])
    authors, _ = people_and_departments(owner_ids={v.author_id for v in versions if v.author_id},
                                               department_ids=set())
    return [{"version": v, "author": authors.get(v.author_id)} for v in versions]


def detail_context(request, segment: Segment, **extra) -> dict:
    now = timezone.now()
    owners, departments = people_and_departments(
        owner_ids={segment.owner_id} if segment.owner_id else set(),
        department_ids={segment.department_id} if segment.department_id else set())
    size_chart, flow_chart = _history_charts(segment, now)
    try:
        warnings = hygiene(segment=segment, now=now)
    except DomainError:
        warnings = []  # a definition that no longer parses (e.g. a trait retyped): the evaluation log says why
    versions = _versions(segment)
    membership = request.membership
    context = {
        "segment": segment, "owner": owners.get(segment.owner_id), "department": departments.get(segment.department_id),
        "kind_badge": KIND_BADGES[segment.kind], "fresh_badge": FRESHNESS_BADGES[segment.freshness],
        "fresh_label": FRESHNESS_LABELS[segment.freshness], "size_chart": size_chart, "flow_chart": flow_chart,
        "warnings": warnings, "versions": versions, "refresh_label": _every(segment.refresh_interval),
        "evaluations": list(SegmentEvaluation.objects.filter(segment=segment).order_by("-created_at", "-id")[:20]),
        "persona": [(label, segment.persona.get(key)) for key, label in PERSONA_FIELDS if segment.persona.get(key)],
        "persona_name": segment.persona.get("name", ""),
        "definition_json": (json.dumps(definition_shown(membership, segment.definition), indent=2, ensure_ascii=False)
                            if segment.definition else ""),
        "can_edit": membership.has("segments.edit"), "can_export": membership.has("data.export"),
        "can_read_reports": membership.has("reports.view"),
        "can_see_pii": membership.has("customers.view_pii"),
        "dependents": sorted(Segment.objects.filter(references__contains=[segment.key]).exclude(pk=segment.pk)
                             .values_list("key", flat=True)),
        **_members_context(request, segment),
        **_activation_context(membership, segment),
        **extra,
    }
    return context


def _activation_context(membership, segment: Segment) -> dict:
    """The plays acting on the segment (for members who may read the activation plan)."""
    if not membership.has("campaigns.view"):
        return {"activation": None}
    plays = list(segment.plays.exclude(status="archived").order_by("-created_at")[:5])
    live = segment.plays.filter(status__in=("planned", "active")).exists()
    return {"activation": plays, "activation_live": live,
            "can_plan": membership.has("campaigns.edit")}


CHANGES_PAGE = 50
CHANGES_DAYS = 7  # the period shown before one is chosen: the last week


def _day(text: str, path: str, problems: list[Problem]) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:20])
    except ValueError:
        problems.append(Problem(path, Code.INVALID_DATE, "A day as YYYY-MM-DD."))
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)


@requires("segments.view")
@require_GET
def segments_changes(request, key: str):
    """Who entered and who exited the segment between two days (UTC, both included),
    newest first, for htmx; names and emails masked as on the members table."""
    segment = segment_or_404(key)
    today, problems = timezone.now().date(), []
    first = _day(request.GET.get("from") or (today - timedelta(days=CHANGES_DAYS - 1)).isoformat(), "from", problems)
    last = _day(request.GET.get("to") or today.isoformat(), "to", problems)
    if first and last and first > last:
        problems.append(Problem("to", Code.INVALID_RANGE, "The last day is on or after the first."))
    try:
        page = max(1, min(int(request.GET.get("page", "1")), 400))
    except ValueError:
        page = 1
    context = {"segment": segment, "problems": problems, "changes_from": first, "changes_to": last,
               "changes_page": page, "today": today.isoformat(), "rows": [], "counts": {}}
    if not problems:
        period = segment_changes(segment=segment, since=_midnight(first), until=_midnight(last + timedelta(days=1)))
        context["counts"] = dict(period.order_by().values_list("change").annotate(n=Count("id")))
        found = list(period.order_by("-at", "-id")[(page - 1) * CHANGES_PAGE:page * CHANGES_PAGE + 1])
        customers, hidden = Customer.objects.in_bulk([c.customer_id for c in found]), hidden_fields(request)
        context["rows"] = [{"change": c, **(who(customers[c.customer_id], hidden) if c.customer_id in customers
                                            else {"customer": None, "title": f"Deleted customer #{c.customer_id}"})}
                           for c in found[:CHANGES_PAGE]]
        context["changes_more"] = len(found) > CHANGES_PAGE
    return render(request, "segments/_changes.html", context, status=400 if problems else 200)


def _members_at(request) -> tuple[datetime | None, str, Problem | None]:
    """?at=YYYY-MM-DD: the end of that day (UTC), its text, or the problem with it."""
    text = request.GET.get("at", "").strip()[:20]
    if not text:
        return None, "", None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, text, Problem("at", Code.INVALID_DATE, "A day as YYYY-MM-DD.")
    if day > timezone.now().date():
        return None, text, Problem("at", Code.IN_FUTURE, "Pick today or a day before: the future has no members yet.")
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=dt_timezone.utc) - timedelta(microseconds=1), \
        text, None


def _members_context(request, segment: Segment) -> dict:
    at, at_text, at_problem = _members_at(request)
    search = request.GET.get("q", "").strip()[:200]
    try:
        page = max(1, min(int(request.GET.get("page", "1")), 400))
    except ValueError:
        page = 1
    hidden = hidden_fields(request)
    rows = [] if at_problem else member_page(segment=segment, search=search, can_see_pii=not hidden,
                                             offset=(page - 1) * MEMBERS_PAGE, limit=MEMBERS_PAGE, at=at)
    more = len(rows) > MEMBERS_PAGE
    return {"members": [{**who(r.customer, hidden), "membership": r} for r in rows[:MEMBERS_PAGE]],
            "members_search": search, "members_page": page, "members_more": more,
            "members_pii_search": not hidden, "members_at": at_text if at else "", "members_at_problem": at_problem,
            "today": timezone.now().date().isoformat()}


@requires("segments.view")
@require_GET
def segments_detail(request, key: str):
    segment = segment_or_404(key)
    why = request.GET.get("why", "")  # from a customer profile: open "why?" for that customer
    extra = {"why_url": reverse("segments_explain", args=[segment.key, int(why)])} if why.isdigit() else {}
    return render(request, "segments/detail.html", detail_context(request, segment, **extra))


@requires("segments.view")
@require_GET
def segments_members(request, key: str):
    """The members table alone (search, pages), for htmx."""
    segment = segment_or_404(key)
    context = _members_context(request, segment)
    return render(request, "segments/_members.html", {"segment": segment, **context,
                                                      "can_edit": request.membership.has("segments.edit")},
                  status=400 if context["members_at_problem"] else 200)


def _shown_tree(node: dict, hidden: frozenset[str]) -> dict:
    """The explain tree as this member may see it, each fact also as JSON for the page."""
    if hidden:
        node = mask_explain_tree(node, other="Hidden")
    return _with_fact_json(node)


def _with_fact_json(node: dict) -> dict:
    node = dict(node)
    if "conditions" in node:
        node["conditions"] = [_with_fact_json(child) for child in node["conditions"]]
    if isinstance(node.get("fact"), dict):
        node["fact_json"] = json.dumps({k: v for k, v in node["fact"].items() if k not in ("pii",)}, ensure_ascii=False)
    return node


@requires("segments.view")
@require_GET
def segments_explain(request, key: str, customer_id: int):
    """"Why is this customer here?": the rule's tree for one customer, each node green or red."""
    segment = segment_or_404(key)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise Http404("No such customer.")
    now = timezone.now()
    hidden = hidden_fields(request)
    membership = Membership.objects.filter(segment=segment, customer=customer, exited_at__isnull=True).first()
    last = Membership.objects.filter(segment=segment, customer=customer).order_by("-entered_at").first()
    tree, error = None, None
    if segment.kind == Segment.Kind.DYNAMIC and segment.definition:
        try:
            _, group, _ = compile_definition(segment.definition, now=now, self_key=segment.key)
        except DomainError as problem:
            error = "; ".join(p.message for p in problem.problems)
        else:
            facts = customer_facts(customer_ids=[customer.pk], now=now,
                                   segment_keys_at={customer.pk: memberships_of(customer_id=customer.pk, now=now)})
            tree = _shown_tree(explain(group, facts[customer.pk], now=now, pii_traits=pii_trait_keys(),
                                       pii_properties=personal_property_keys(),
                                       shown=group_shown(request.membership, group)), hidden)
    return render(request, "segments/_explain.html", {
        "segment": segment, **who(customer, hidden), "membership": membership, "last": last, "tree": tree,
        "error": error, "now": now})


@requires("segments.view")
@require_GET
def segments_diff(request, key: str):
    """What changed between two saved versions (?from=&to=), as green/red lines."""
    segment = segment_or_404(key)
    try:
        numbers = int(request.GET.get("from", "")), int(request.GET.get("to", ""))
    except ValueError:
        return render(request, "segments/_diff.html", {"error": "Pick two versions to compare."}, status=400)
    found = dict(SegmentVersion.objects.filter(segment=segment, version__in=numbers).values_list("version", "definition"))
    missing = [n for n in numbers if n not in found]
    if missing:
        return render(request, "segments/_diff.html",
                      {"error": f"{segment.name} has no version {missing[0]}."}, status=404)
    before, after = (definition_shown(request.membership, found[number]) for number in numbers)
    diff = definition_diff(before, after, labels=(f"v{numbers[0]}", f"v{numbers[1]}"))
    lines = []
    for line in diff["text"].splitlines():
        kind = ("meta" if line.startswith(("---", "+++", "@@")) else "add" if line.startswith("+")
                else "del" if line.startswith("-") else "same")
        lines.append({"kind": kind, "text": line})
    return render(request, "segments/_diff.html", {"segment": segment, "from": numbers[0], "to": numbers[1],
                                                   "lines": lines, "diff": diff})
