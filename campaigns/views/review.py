"""/segments/review/: the review queue — each segment with why it is there, its owner and
last review, and the decisions (keep with a note and a day, merge into another segment,
archive) for members with `segments.edit`; below, the latest decisions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from campaigns.models import SegmentReview
from campaigns.review import (
    DEFAULT_KEEP_DAYS, MAX_KEEP_DAYS, review_archive, review_keep, review_merge, review_queue, review_segment_get,
)
from common.errors import Code, DomainError
from common.pages import refuse_forbidden, requires
from segments.models import Segment

DECISIONS = {"keep", "merge", "archive"}


@require_GET
@requires("segments.view")
def review_page(request):
    now = timezone.now()
    mine = review_queue(now=now, owner_id=request.user.pk)
    scope = request.GET.get("owner") or ("me" if mine else "all")
    items = mine if scope == "me" else review_queue(now=now)
    history = SegmentReview.objects.select_related("segment", "merged_into")[:50]
    return render(request, "campaigns/review.html", {
        "items": items, "scope": scope, "mine_count": len(mine), "history": history,
        "can_decide": request.membership.has("segments.edit"),
        "targets": Segment.objects.exclude(status=Segment.Status.ARCHIVED).exclude(kind=Segment.Kind.SNAPSHOT)
                                  .order_by("name").values_list("key", "name"),
        "default_day": (now + timedelta(days=DEFAULT_KEEP_DAYS)).date().isoformat(),
        "min_day": (now + timedelta(days=1)).date().isoformat(),
        "max_day": (now + timedelta(days=MAX_KEEP_DAYS)).date().isoformat()})


@require_GET
@requires("segments.view")
def review_notice(request):
    """The in-app notice on the workspace home (htmx): how many of your segments wait for
    review, or nothing."""
    mine = review_queue(now=timezone.now(), owner_id=request.user.pk)
    return render(request, "campaigns/_review_notice.html", {"count": len(mine)})


@require_POST
@requires("segments.edit")
def review_decide(request, key: str, decision: str):
    now, post = timezone.now(), request.POST
    try:
        segment = review_segment_get(key=key)
        if decision == "keep":
            review_keep(actor=request.membership, segment=segment, note=post.get("note", ""),
                        next_review_at=post.get("next_review_at") or None, now=now)
        elif decision == "merge":
            review_merge(actor=request.membership, segment=segment, into=post.get("into", ""),
                         note=post.get("note", ""), now=now)
        elif decision == "archive":
            review_archive(actor=request.membership, segment=segment, note=post.get("note", ""), now=now)
        else:
            raise DomainError.single(path="decision", code=Code.INVALID_CHOICE, message="Keep, merge or archive.")
    except DomainError as error:
        refuse_forbidden(error)
        for problem in error.problems:
            messages.error(request, f"{segment_label(key)}: {problem.message}")
        return redirect(f"{reverse('segments_review')}?owner={_scope(post)}")
    messages.success(request, {"keep": f"“{key}” kept.", "merge": f"“{key}” merged into “{post.get('into')}”.",
                               "archive": f"“{key}” archived."}[decision])
    return redirect(f"{reverse('segments_review')}?owner={_scope(post)}")


def _scope(post) -> str:
    return "me" if post.get("owner") == "me" else "all"


def segment_label(key: str) -> str:
    return Segment.objects.filter(key=key).values_list("name", flat=True).first() or key
