"""The review cycle, so segments do not rot: a queue of the segments that may no longer earn
their keep, with why, and the decisions a segment's owner takes on each — keep it (with a
note and the day it comes back), merge it into another segment, or archive it — kept as
SegmentReview rows and in the audit log. A quarterly reminder emails each owner their part
of the queue; the workspace home shows it too.

It lives in campaigns, the top room, because "a segment without activation is a
spreadsheet": whether plays and campaigns use a segment is part of the verdict, and a merge
moves them onto the segment that stays.

Reasons (REASONS): unused — no export, API read or campaign for REVIEW_DAYS; unchanged —
membership has not moved for REVIEW_DAYS (dynamic segments); failing — the last evaluation
failed; too small — under the workspace's minimum size; near-duplicate — members ≥ 90%
the same as another's; no activation — no planned or active play, no campaign in draft,
scheduled, running or paused, no webhook (after a segment's first GRACE_DAYS); review due —
kept until a day that has come. A segment kept until a later day is out of the queue until
then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from audit.services import audit_record
from campaigns.models import Campaign, Play, SegmentReview, WebhookEndpoint
from common.actors import Actor
from common.errors import Code, DomainError, NotFound, Problem
from segments.models import Segment
from segments.selectors.directory import near_duplicates, with_freshness
from segments.selectors.hygiene import segment_settings
from segments.services import segment_update
from tenants.models import User
from tenants.permissions import ensure_permitted

REVIEW_DAYS = 90
GRACE_DAYS = 14
DEFAULT_KEEP_DAYS = 90
MAX_KEEP_DAYS = 366
MAX_NOTE = 2000
LIVE_PLAYS = (Play.Status.PLANNED, Play.Status.ACTIVE)
LIVE_CAMPAIGNS = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)
SENDING = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)
REASONS = {
    "unused": "No export, API read or campaign in {days} days",
    "unchanged": "Its members have not changed in {days} days",
    "failing": "Its last evaluation failed",
    "too_small": "Smaller than the workspace's minimum of {min_size}",
    "near_duplicate": "Almost the same members as {others}",
    "no_activation": "No play, campaign or webhook uses it",
    "review_due": "Kept until {until}: due for review again",
}


@dataclass
class ReviewItem:
    segment: Segment
    reasons: list[dict]  # {"code", "message"}
    last_review: SegmentReview | None = None
    owner: str | None = None  # the owner's email

    @property
    def codes(self) -> list[str]:
        return [r["code"] for r in self.reasons]


@dataclass
class _Usage:
    activated: set[int] = field(default_factory=set)
    campaigned: set[int] = field(default_factory=set)  # a campaign touched within REVIEW_DAYS


# ---------------------------------------------------------------------- the queue


def review_queue(*, now: datetime, owner_id: int | None = None) -> list[ReviewItem]:
    """The segments due for review (all, or one owner's), most reasons first."""
    segments = list(with_freshness(Segment.objects.exclude(status=Segment.Status.ARCHIVED)
                                   .exclude(kind=Segment.Kind.SNAPSHOT), now=now).order_by("name"))
    if owner_id is not None:
        mine = [s for s in segments if s.owner_id == owner_id]
    else:
        mine = segments
    latest = latest_reviews([s.pk for s in mine])
    usage, twins = _usage(now), near_duplicates(segments)
    min_size = segment_settings().min_size
    owners = dict(User.objects.filter(pk__in={s.owner_id for s in mine if s.owner_id}).values_list("pk", "email"))
    items = []
    for segment in mine:
        review = latest.get(segment.pk)
        if review and review.decision == SegmentReview.Decision.KEPT and review.next_review_at \
                and review.next_review_at > now.date():
            continue
        reasons = _reasons(segment, review, usage, twins.get(segment.pk, []), min_size, now)
        if reasons:
            items.append(ReviewItem(segment=segment, reasons=reasons, last_review=review,
                                    owner=owners.get(segment.owner_id)))
    return sorted(items, key=lambda item: (-len(item.reasons), item.segment.name))


def latest_reviews(segment_ids: list[int]) -> dict[int, SegmentReview]:
    rows = (SegmentReview.objects.filter(segment_id__in=segment_ids)
            .order_by("segment_id", "-decided_at", "-id").distinct("segment_id"))
    return {review.segment_id: review for review in rows}


def _usage(now: datetime) -> _Usage:
    usage = _Usage()
    usage.activated |= set(Play.objects.filter(status__in=LIVE_PLAYS, segment__isnull=False)
                           .values_list("segment_id", flat=True))
    usage.activated |= set(Campaign.objects.filter(status__in=LIVE_CAMPAIGNS, segment__isnull=False)
                           .values_list("segment_id", flat=True))
    usage.activated |= set(WebhookEndpoint.objects.filter(segment__isnull=False).values_list("segment_id", flat=True))
    usage.campaigned = set(Campaign.objects.filter(segment__isnull=False, updated_at__gte=now - timedelta(days=REVIEW_DAYS))
                           .values_list("segment_id", flat=True))
    return usage


def _reasons(segment: Segment, review: SegmentReview | None, usage: _Usage, twins: list, min_size: int,
             now: datetime) -> list[dict]:
    cutoff, created = now - timedelta(days=REVIEW_DAYS), segment.created_at or now
    found: list[tuple[str, dict]] = []
    if (segment.last_used_at or created) < cutoff and segment.pk not in usage.campaigned:
        found.append(("unused", {}))
    if segment.kind == Segment.Kind.DYNAMIC and (segment.last_changed_at or created) < cutoff:
        found.append(("unchanged", {}))
    if getattr(segment, "freshness", None) == "failed":
        found.append(("failing", {}))
    evaluated = segment.kind == Segment.Kind.STATIC or segment.last_evaluated_at is not None
    if evaluated and segment.size < min_size:
        found.append(("too_small", {"min_size": min_size}))
    if twins:
        found.append(("near_duplicate", {"others": ", ".join(other.name for other, _ in twins)}))
    if segment.pk not in usage.activated and created < now - timedelta(days=GRACE_DAYS):
        found.append(("no_activation", {}))
    if review and review.decision == SegmentReview.Decision.KEPT and review.next_review_at:
        found.append(("review_due", {"until": review.next_review_at.isoformat()}))
    return [{"code": code, "message": REASONS[code].format(days=REVIEW_DAYS, **values)} for code, values in found]


def _current_reasons(segment: Segment, now: datetime) -> list[str]:
    fresh = with_freshness(Segment.objects.filter(pk=segment.pk), now=now).first() or segment
    twins = near_duplicates(list(with_freshness(Segment.objects.exclude(status=Segment.Status.ARCHIVED), now=now)))
    review = latest_reviews([segment.pk]).get(segment.pk)
    return [r["code"] for r in _reasons(fresh, review, _usage(now), twins.get(segment.pk, []),
                                        segment_settings().min_size, now)]


def review_history(*, segment: Segment) -> list[SegmentReview]:
    return list(SegmentReview.objects.filter(segment=segment).select_related("merged_into"))


# ---------------------------------------------------------------------- decisions


def _note(note: Any, *, required: bool) -> list[Problem]:
    if not isinstance(note, str) or len(note) > MAX_NOTE or (required and not note.strip()):
        return [Problem("note", Code.REQUIRED if required else Code.INVALID_TYPE,
                        f"Say why (up to {MAX_NOTE:,} characters).")]
    if "\x00" in note:
        return [Problem("note", Code.NULL_CHARACTERS_NOT_ALLOWED, "Text cannot contain NUL characters.")]
    return []


def _record(actor: Actor, segment: Segment, decision: str, *, note: str, now: datetime, reasons: list[str],
            next_review_at: date | None = None, merged_into: Segment | None = None) -> SegmentReview:
    review = SegmentReview.objects.create(
        segment=segment, decision=decision, note=note.strip(), reasons=reasons, next_review_at=next_review_at,
        merged_into=merged_into, reviewer_id=getattr(actor, "user_id", None), decided_at=now)
    audit_record(actor=actor, action=f"segment.review_{decision}", target=segment, target_label=segment.key,
                 changes={"reasons": reasons, "note": review.note,
                          "next_review_at": next_review_at.isoformat() if next_review_at else None,
                          "merged_into": merged_into.key if merged_into else None})
    return review


@transaction.atomic
def review_keep(*, actor: Actor, segment: Segment, note: Any, next_review_at: Any = None,
                now: datetime) -> SegmentReview:
    """Kept, with why, out of the queue until `next_review_at` (default: in 90 days)."""
    ensure_permitted(actor, "segments.edit")
    today = now.date()
    day = today + timedelta(days=DEFAULT_KEEP_DAYS) if next_review_at in (None, "") else next_review_at
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            day = None
    problems = _note(note, required=True)
    if not isinstance(day, date) or not today < day <= today + timedelta(days=MAX_KEEP_DAYS):
        problems.append(Problem("next_review_at", Code.OUT_OF_RANGE,
                                f"The next review is a day after today, within {MAX_KEEP_DAYS} days."))
    if problems:
        raise DomainError(problems=problems)
    return _record(actor, segment, SegmentReview.Decision.KEPT, note=note, now=now,
                   reasons=_current_reasons(segment, now), next_review_at=day)


@transaction.atomic
def review_archive(*, actor: Actor, segment: Segment, note: Any, now: datetime) -> SegmentReview:
    """Archived — refused while a play, campaign or webhook still uses it (merge instead)."""
    ensure_permitted(actor, "segments.edit")
    problems = _note(note, required=False)
    users = _users(segment)
    if users:
        problems.append(Problem("segment", Code.CONFLICT, f"Still used by {users}: merge it into another segment, "
                                                          f"or finish those first."))
    if problems:
        raise DomainError(problems=problems)
    reasons = _current_reasons(segment, now)
    segment_update(actor=actor, segment=segment, now=now, status=Segment.Status.ARCHIVED)
    return _record(actor, segment, SegmentReview.Decision.ARCHIVED, note=note, now=now, reasons=reasons)


@transaction.atomic
def review_merge(*, actor: Actor, segment: Segment, into: Any, note: Any, now: datetime) -> SegmentReview:
    """Merged into `into` (a key): its plans, draft and scheduled campaigns and webhooks move
    to that segment, then it is archived. Refused while one of its campaigns is sending."""
    ensure_permitted(actor, "segments.edit")
    problems = _note(note, required=False)
    target = Segment.objects.filter(key=into).first() if isinstance(into, str) else None
    if target is None:
        problems.append(Problem("into", Code.UNKNOWN_SEGMENT, f"No segment “{into}”."))
    elif target.pk == segment.pk or target.status == Segment.Status.ARCHIVED or target.kind == Segment.Kind.SNAPSHOT:
        problems.append(Problem("into", Code.INVALID_VALUE, "Merge into another live segment (not itself, "
                                                            "an archived one or a snapshot)."))
    sending = list(Campaign.objects.filter(segment=segment, status__in=SENDING).values_list("name", flat=True))
    if sending:
        problems.append(Problem("segment", Code.CONFLICT, f"Campaigns are sending to it: {', '.join(sending)}. "
                                                          f"Finish or cancel them first."))
    if problems:
        raise DomainError(problems=problems)
    reasons = _current_reasons(segment, now)
    moved = {"segment": target, "segment_label": target.name}
    Play.objects.filter(segment=segment, status__in=LIVE_PLAYS).update(**moved)
    Campaign.objects.filter(segment=segment, status__in=(Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)).update(**moved)
    WebhookEndpoint.objects.filter(segment=segment).update(**moved)
    segment_update(actor=actor, segment=segment, now=now, status=Segment.Status.ARCHIVED)
    return _record(actor, segment, SegmentReview.Decision.MERGED, note=note, now=now, reasons=reasons,
                   merged_into=target)


def _users(segment: Segment) -> str:
    plays = list(Play.objects.filter(segment=segment, status__in=LIVE_PLAYS).values_list("name", flat=True))
    campaigns = list(Campaign.objects.filter(segment=segment, status__in=LIVE_CAMPAIGNS).values_list("name", flat=True))
    hooks = WebhookEndpoint.objects.filter(segment=segment).count()
    parts = ([f"plays {', '.join(plays)}"] if plays else []) + ([f"campaigns {', '.join(campaigns)}"] if campaigns else [])
    return "; ".join(parts + ([f"{hooks} webhook(s)"] if hooks else []))


def review_segment_get(*, key: str) -> Segment:
    segment = Segment.objects.filter(key=key).exclude(status=Segment.Status.ARCHIVED).first()
    if segment is None:
        raise NotFound.single(path="", code=Code.NOT_FOUND, message=f"No live segment “{key}”.")
    return segment


# ---------------------------------------------------------------------- the quarterly reminder


def review_reminders_send(*, now: datetime, workspace: str, link: str) -> int:
    """One email to each owner with segments in the queue, listing them; returns how many."""
    items = review_queue(now=now)
    by_owner: dict[str, list[ReviewItem]] = {}
    for item in items:
        if item.owner:
            by_owner.setdefault(item.owner, []).append(item)
    for email, mine in by_owner.items():
        lines = "\n".join(f"- {item.segment.name} ({item.segment.key}): "
                          f"{'; '.join(r['message'] for r in item.reasons)}" for item in mine)
        send_mail(subject=f"{workspace}: {len(mine)} of your segments are due for review",
                  message=(f"Once a quarter Strata asks segment owners to keep, merge or archive the segments that "
                           f"may no longer earn their keep.\n\n{lines}\n\nReview them: {link}\n"),
                  from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email])
    return len(by_owner)
