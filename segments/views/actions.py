"""What a segment page does: evaluate now, pause or resume, snapshot, delete, and change
a static segment's members (by id or by a CSV upload). Refusals re-render the page."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.pages import page_status, refuse_forbidden, requires
from segments.models import Membership, Segment
from segments.selectors.members import resolve_customers, resolve_upload
from segments.services import (
    segment_delete, segment_evaluate_request, segment_update, snapshot_create, static_members_change,
)
from segments.uploads import read_upload
from segments.views.common import segment_or_404
from segments.views.detail import detail_context


@requires("segments.edit")
@require_POST
def segments_evaluate(request, key: str):
    segment = segment_or_404(key)
    try:
        segment_evaluate_request(actor=request.membership, segment=segment, now=timezone.now())
    except DomainError as error:
        refuse_forbidden(error)
        messages.error(request, error.problems[0].message)
        return redirect("segments_detail", key=segment.key)
    messages.success(request, "Evaluation queued. The log below shows it when it has run.")
    return redirect("segments_detail", key=segment.key)


STATUS_MESSAGES = {
    Segment.Status.ACTIVE: "is active again and is being evaluated.",
    Segment.Status.PAUSED: "is paused: its members stay as they are until you resume it.",
    Segment.Status.ARCHIVED: "is archived: it is not evaluated and leaves the directory (filter by status to find it).",
}


@requires("segments.edit")
@require_POST
def segments_status(request, key: str):
    """Pause, resume or archive a segment (segment_update: archiving is refused while a
    segment in use references it)."""
    segment = segment_or_404(key)
    status = request.POST.get("status", "")
    try:
        segment_update(actor=request.membership, segment=segment, now=timezone.now(), status=status)
    except DomainError as error:
        refuse_forbidden(error)
        context = detail_context(request, segment, action_errors=error.messages)
        return render(request, "segments/detail.html", context, status=page_status(error))
    messages.success(request, f"“{segment.name}” {STATUS_MESSAGES[status]}")
    return redirect("segments_detail", key=segment.key)


@requires("segments.edit")
@require_POST
def segments_snapshot(request, key: str):
    segment = segment_or_404(key)
    now = timezone.now()
    new_key = request.POST.get("key", "").strip() or f"{segment.key}-{now:%Y%m%d-%H%M}"[:64]
    name = request.POST.get("name", "").strip() or f"{segment.name} ({now:%Y-%m-%d %H:%M} UTC)"
    try:
        snapshot = snapshot_create(actor=request.membership, source=segment, key=new_key, name=name[:200], now=now)
    except DomainError as error:
        refuse_forbidden(error)
        context = detail_context(request, segment, action_errors=error.messages)
        return render(request, "segments/detail.html", context, status=400)
    messages.success(request, f"Frozen {snapshot.size:,} members into “{snapshot.name}”.")
    return redirect("segments_detail", key=snapshot.key)


@requires("segments.edit")
@require_POST
def segments_delete(request, key: str):
    segment = segment_or_404(key)
    if request.POST.get("confirm", "") != segment.key:
        context = detail_context(request, segment, delete_open=True,
                                  delete_error=f"Type the key “{segment.key}” to confirm.")
        return render(request, "segments/detail.html", context, status=400)
    try:
        segment_delete(actor=request.membership, segment=segment)
    except DomainError as error:
        refuse_forbidden(error)
        context = detail_context(request, segment, action_errors=error.messages)
        return render(request, "segments/detail.html", context, status=page_status(error))
    messages.success(request, f"Segment “{segment.name}” was deleted with its history.")
    return redirect("segments_list")


def _ids(raw: str) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in raw.replace(",", "\n").splitlines() if v.strip()))


@requires("segments.edit")
@require_POST
def segments_static(request, key: str):
    """Add or remove hand-picked members of a static segment by external id."""
    segment = segment_or_404(key)
    add, remove = _ids(request.POST.get("add", "")), _ids(request.POST.get("remove", ""))
    problems = []
    if not add and not remove:
        problems.append("List at least one external id to add or remove.")
    found_add = resolve_customers(add, path="add")
    found_remove = resolve_customers(remove, path="remove")
    problems += [p.message for p in found_add.unmatched + found_remove.unmatched]
    if not problems:
        try:
            added, removed = static_members_change(actor=request.membership, segment=segment,
                                                   add=found_add.customer_ids, remove=found_remove.customer_ids,
                                                   now=timezone.now())
        except DomainError as error:
            refuse_forbidden(error)
            problems += error.messages
        else:
            messages.success(request, f"{added:,} added, {removed:,} removed.")
            return redirect("segments_detail", key=segment.key)
    context = detail_context(request, segment, static_errors=problems, static_add=request.POST.get("add", ""),
                              action_errors=problems if segment.kind != Segment.Kind.STATIC else [],
                              static_remove=request.POST.get("remove", ""))
    return render(request, "segments/detail.html", context, status=400)


@requires("segments.edit")
@require_POST
def segments_upload(request, key: str):
    """A one-column CSV of external ids (or emails, for members who may read them) added
    to a static segment; rows naming nobody come back as a report."""
    segment = segment_or_404(key)
    try:
        rows = read_upload(request.FILES.get("file"))
        ids, unmatched = resolve_upload(rows, by_email=request.membership.has("customers.view_pii"))
        added, _ = static_members_change(actor=request.membership, segment=segment, add=ids, remove=[],
                                         now=timezone.now(), source=Membership.Source.IMPORT)
    except DomainError as error:
        refuse_forbidden(error)
        context = detail_context(request, segment, upload_errors=error.messages)
        return render(request, "segments/detail.html", context, status=page_status(error))
    context = detail_context(request, segment_or_404(key), upload_report={
        "rows": len(rows), "matched": len(rows) - len(unmatched), "added": added, "unmatched": unmatched[:100],
        "more": max(0, len(unmatched) - 100)})
    return render(request, "segments/detail.html", context)
