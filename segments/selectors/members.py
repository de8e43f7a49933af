"""Members of a segment now or at a past moment, their changes, a members page, one
customer's memberships, and customers named by id, external id or email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    F,
    Q,
    QuerySet,
)
from django.db.models.functions import Upper

from common.errors import Code, Problem
from customers.models import Customer
from customers.selectors import customers_by_external_ids
from segments.models import (
    Membership,
    MembershipChange,
    Segment,
)


def open_memberships(*, segment: Segment) -> QuerySet[Membership]:
    return Membership.objects.filter(segment=segment, exited_at__isnull=True)


def segment_members(*, segment: Segment, at: datetime | None = None) -> QuerySet[Customer]:
    """Customers in the segment now, or at a past moment `at` (from the history)."""
    if at is None:
        rows = Membership.objects.filter(segment=segment, exited_at__isnull=True)
    else:
        rows = Membership.objects.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at), segment=segment,
                                          entered_at__lte=at)
    return Customer.objects.filter(id__in=rows.values("customer_id"))


def segment_changes(*, segment: Segment, since: datetime | None = None, after_id: int | None = None,
                    until: datetime | None = None):
    """The segment's entered/exited facts in order (at ≥ since, at < until, after an id)."""
    changes = MembershipChange.objects.filter(segment=segment)
    if since is not None:
        changes = changes.filter(at__gte=since)
    if until is not None:
        changes = changes.filter(at__lt=until)
    if after_id is not None:
        changes = changes.filter(id__gt=after_id)
    return changes.order_by("id")


def member_rows(*, segment: Segment, at: datetime | None = None) -> QuerySet[Membership]:
    """The memberships that make `segment`'s members now (open rows) or at a past moment `at`
    (rows with entered_at ≤ at < exited_at), with their customers, by customer id (the
    keyset the API pages on). A customer has at most one membership covering any instant.

    Index: now → the partial unique index (segment_id, customer_id) WHERE exited_at IS
    NULL serves `segment_id = %s AND exited_at IS NULL AND customer_id > %s ORDER BY
    customer_id`; at → membership_entered_idx (segment_id, entered_at)."""
    rows = Membership.objects.filter(segment=segment)
    if at is None:
        rows = rows.filter(exited_at__isnull=True)
    else:
        rows = rows.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at), entered_at__lte=at)
    return rows.select_related("customer").order_by("customer_id")


def member_batches(*, segment: Segment, at: datetime | None = None, batch: int = 2000):
    """Every member row, in customer-id order, `batch` rows per query (keyset; for exports)."""
    after = 0
    while True:
        rows = list(member_rows(segment=segment, at=at).filter(customer_id__gt=after)[:batch])
        if not rows:
            return
        yield rows
        after = rows[-1].customer_id


def memberships_of(*, customer_id: int, now: datetime) -> set[str]:
    """Keys of the segments the customer is in at `now` (for segment conditions in explain)."""
    return set(Membership.objects.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=now), customer_id=customer_id,
                                         entered_at__lte=now).values_list("segment__key", flat=True))


@dataclass(frozen=True)
class Resolved:
    customer_ids: list[int]
    unmatched: list[Problem]


def resolve_customers(items: list[Any], *, path: str) -> Resolved:
    """Customer ids for a list of customer ids (numbers) and external ids (strings); each
    item naming nobody is reported at `path[i]`. Two or three queries whatever the count."""
    numbers = {item for item in items if isinstance(item, int)}
    texts = {item for item in items if isinstance(item, str)}
    known = set(Customer.objects.filter(id__in=numbers).values_list("id", flat=True)) if numbers else set()
    by_external = customers_by_external_ids(texts) if texts else {}
    ids, unmatched = [], []
    for index, item in enumerate(items):
        found = item if isinstance(item, int) and item in known else by_external.get(item) if isinstance(item, str) else None
        if found is None:
            unmatched.append(Problem(f"{path}[{index}]", Code.UNKNOWN_CUSTOMER, f"No customer is known as {item!r}."))
        else:
            ids.append(found)
    return Resolved(customer_ids=list(dict.fromkeys(ids)), unmatched=unmatched)


@dataclass(frozen=True)
class UploadRow:
    row: int  # 1-based line of the file (the header, when there is one, is row 1)
    value: str


def resolve_upload(rows: list[UploadRow], *, by_email: bool) -> tuple[list[int], list[dict]]:
    """Customer ids named by an uploaded column of external ids or emails, and a report of
    the rows naming nobody (or, for emails, more than one customer). A value is tried as an
    external id first, then — when `by_email` (the actor may see personal data) and it
    holds an @ — as an email, case-insensitively (customer_email_prefix_idx on upper(email))."""
    by_external = customers_by_external_ids({r.value for r in rows})
    emails = {r.value.upper() for r in rows if r.value not in by_external and "@" in r.value}
    by_email_ids: dict[str, list[int]] = {}
    if by_email and emails:
        for email, customer_id in (Customer.objects.annotate(e=Upper("email")).filter(e__in=emails)
                                   .values_list("e", "id")):
            by_email_ids.setdefault(email, []).append(customer_id)
    ids, unmatched = [], []
    for r in rows:
        if r.value in by_external:
            ids.append(by_external[r.value])
            continue
        matches = by_email_ids.get(r.value.upper(), [])
        if len(matches) == 1:
            ids.append(matches[0])
        elif len(matches) > 1:
            unmatched.append({"row": r.row, "value": r.value, "code": "ambiguous_email",
                              "message": f"{len(matches)} customers have this email; add them by external id."})
        elif "@" in r.value and not by_email:
            unmatched.append({"row": r.row, "value": r.value, "code": "pii_required",
                              "message": "Matching by email needs the “customers.view_pii” permission."})
        else:
            unmatched.append({"row": r.row, "value": r.value, "code": "unknown_customer",
                              "message": "No customer has this external id or email."})
    return list(dict.fromkeys(ids)), unmatched


def member_page(*, segment: Segment, search: str, can_see_pii: bool, offset: int, limit: int,
                at: datetime | None = None) -> list[Membership]:
    """One page of the memberships open now (or at the moment `at`, from the history) with
    their customers, newest entries first; search matches the start of the external id
    (and email or name for members who may read them)."""
    rows = Membership.objects.filter(segment=segment).select_related("customer")
    if at is None:
        rows = rows.filter(exited_at__isnull=True)
    else:
        rows = rows.filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at), entered_at__lte=at)
    if search:
        match = Q(customer__external_id__istartswith=search)
        if can_see_pii:
            match |= Q(customer__email__istartswith=search) | Q(customer__name__istartswith=search)
        rows = rows.filter(match)
    return list(rows.order_by("-entered_at", "-id")[offset:offset + limit + 1])


def customer_memberships(*, customer: Customer, limit: int = 100) -> list[Membership]:
    """The customer's memberships in segments, open ones first, then newest."""
    return list(Membership.objects.filter(customer=customer).select_related("segment")
                .order_by(F("exited_at").desc(nulls_first=True), "-entered_at")[:limit])
