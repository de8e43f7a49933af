"""Sending a campaign occasion by email: at most once per (campaign, customer, occasion).

The at-most-once protocol, per recipient:

1. render the message (a template error fails this recipient before anything is claimed);
2. **claim**: `INSERT … ON CONFLICT (campaign, customer, occasion) DO NOTHING RETURNING id`
   as its own committed statement, status `queued`. No row back → someone already
   claimed it → skip;
3. hand the message to Django's email backend;
4. mark the row `sent` (or `failed` when the backend refuses/raises).

A worker that dies between 2 and 4 leaves a `queued` row. Whether that email went out is
unknowable (the SMTP server may have accepted it just before the crash), so the next run
does **not** resend it: it marks the row `unknown` for review. We chose at-most-once
because a duplicate marketing email is a visible harm and a legal one after an
unsubscribe, while one missing email in a crash is rare and visible in the send log.

Runs of one campaign are serialised by a session-level PostgreSQL advisory lock keyed on
(schema, campaign): while it is held, every `queued` row at the start of a run can only
be an orphan of a dead attempt. The lock dies with the connection, so a killed worker
never blocks the next attempt.

Must not be called inside an outer transaction (the claims must commit on their own).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core import mail, signing
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Subquery

from campaigns import holdout, personalisation
from campaigns.models import Assignment, Campaign, Send
from common.clock import Clock
from customers.models import Consent, Customer
from segments.models import Membership
from tenants.selectors import tenant_url

UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
COUNTED_FOR_CAP = (Send.Status.SENT, Send.Status.UNKNOWN, Send.Status.QUEUED)


def batch_size() -> int:
    return int(getattr(settings, "CAMPAIGN_EMAIL_BATCH_SIZE", 100))


def rate_per_second() -> float:
    return float(getattr(settings, "CAMPAIGN_EMAIL_RATE_PER_SECOND", 10))


# ---------------------------------------------------------------------- unsubscribe links


def unsubscribe_token(campaign: Campaign, customer: Customer) -> str:
    """Signed (not encrypted) and never expiring: an unsubscribe link must work years later.
    The schema is inside, so a token can only act in the workspace that issued it."""
    return signing.dumps({"s": connection.schema_name, "c": campaign.pk, "u": customer.pk}, salt=UNSUBSCRIBE_SALT,
                         compress=True)


def unsubscribe_read(token: str) -> dict | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("s") != connection.schema_name:
        return None
    return data


def unsubscribe_url(token: str) -> str:
    return tenant_url(connection.tenant, f"/unsubscribe/{token}/")


# ---------------------------------------------------------------------- assignment


def assignments_ensure(*, campaign: Campaign, customer_ids: list[int], now: datetime) -> int:
    """Store arms for customers who have none yet (deterministic, so a rerun agrees)."""
    if not customer_ids:
        return 0
    known = set(Assignment.objects.filter(campaign=campaign, customer_id__in=customer_ids)
                .values_list("customer_id", flat=True))
    rows = []
    for customer_id in customer_ids:
        if customer_id in known:
            continue
        arm = holdout.assign(salt=campaign.salt, customer_id=customer_id, percent=campaign.holdout_percent,
                             variants=campaign.variants)
        rows.append(Assignment(campaign=campaign, customer_id=customer_id, group=arm.group, variant=arm.variant,
                               assigned_at=now))
    Assignment.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
    return len(rows)


def assign_members(*, campaign: Campaign, now: datetime) -> int:
    """Arms for every current member of the campaign's segment not yet assigned."""
    ids = list(Membership.objects.filter(segment_id=campaign.segment_id, exited_at__isnull=True)
               .exclude(customer_id__in=Assignment.objects.filter(campaign=campaign).values("customer_id"))
               .values_list("customer_id", flat=True))
    total = 0
    for start in range(0, len(ids), 10_000):
        total += assignments_ensure(campaign=campaign, customer_ids=ids[start:start + 10_000], now=now)
    return total


# ---------------------------------------------------------------------- the run


@dataclass
class RunResult:
    status: str = "done"  # done | more | busy | not_running
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    unknown: int = 0
    already: int = 0
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"status": self.status, "sent": self.sent, "failed": self.failed, "suppressed": self.suppressed,
                "unknown": self.unknown, "already": self.already}


@contextmanager
def _run_lock(campaign_id: int):
    key = f"{connection.schema_name}:campaign-send:{campaign_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def orphans_mark_unknown(*, campaign: Campaign, now: datetime) -> int:
    """Claimed by an attempt that never confirmed (it died): not resent, flagged for review."""
    return Send.objects.filter(campaign=campaign, status=Send.Status.QUEUED).update(
        status=Send.Status.UNKNOWN, updated_at=now,
        error="Claimed by an attempt that stopped before confirming; not resent (at-most-once).")


def _claim(*, campaign: Campaign, customer_id: int, occasion: str, variant: str, status: str, now: datetime,
           reason: str = "", error: str = "") -> int | None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_send (campaign_id, customer_id, occasion, channel, variant, status, reason, error, "
            "claimed_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (campaign_id, customer_id, occasion) DO NOTHING RETURNING id",
            [campaign.pk, customer_id, occasion, campaign.channel, variant, status, reason, error[:2000], now, now, now])
        row = cursor.fetchone()
    return row[0] if row else None


def _finish(send_id: int, *, status: str, now: datetime, error: str = "") -> None:
    with transaction.atomic():
        Send.objects.filter(pk=send_id, status=Send.Status.QUEUED).update(
            status=status, sent_at=now if status == Send.Status.SENT else None, error=error[:2000], updated_at=now)


def _candidates(*, campaign: Campaign, occasion: str, now: datetime, after_id: int, limit: int,
                only_ids: list[int] | None):
    """Treatment members without a Send for this occasion, with consent and cap facts."""
    qs = Customer.objects.filter(
        id__gt=after_id,
        memberships__segment_id=campaign.segment_id, memberships__exited_at__isnull=True,
    ).filter(
        campaign_assignments__campaign=campaign, campaign_assignments__group=Assignment.Group.TREATMENT,
    ).exclude(
        id__in=Send.objects.filter(campaign=campaign, occasion=occasion).values("customer_id"),
    ).annotate(
        variant_key=Subquery(Assignment.objects.filter(campaign=campaign, customer=OuterRef("pk")).values("variant")[:1]),
        consented=Exists(Consent.objects.filter(customer=OuterRef("pk"), channel=Consent.Channel.EMAIL, granted=True)),
    )
    if only_ids is not None:
        qs = qs.filter(id__in=only_ids)
    if campaign.cap_max_sends and campaign.cap_days:
        recent = (Send.objects.filter(campaign=campaign, customer=OuterRef("pk"), status__in=COUNTED_FOR_CAP,
                                      claimed_at__gt=now - timedelta(days=campaign.cap_days))
                  .values("customer").annotate(n=Count("id")).values("n")[:1])
        qs = qs.annotate(recent=Subquery(recent))
    return list(qs.order_by("id")[:limit])


def _content_for(campaign: Campaign, variant: str) -> dict:
    for option in campaign.variants or []:
        if option.get("key") == variant:
            return {**campaign.content, **(option.get("content") or {})}
    return campaign.content


def _message(campaign: Campaign, customer: Customer, rendered: dict, unsubscribe: str) -> mail.EmailMultiAlternatives:
    message = mail.EmailMultiAlternatives(
        subject=rendered["subject"], body=rendered["text"],
        from_email=campaign.content.get("from_email") or settings.DEFAULT_FROM_EMAIL, to=[customer.email],
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                 "X-Strata-Campaign": str(campaign.pk)})
    if rendered["html"]:
        message.attach_alternative(rendered["html"], "text/html")
    return message


def _deliver(backend, message: mail.EmailMessage) -> int:
    """The one line that hands a message to the backend (a crash test interrupts here)."""
    return backend.send_messages([message])


def run_occasion(*, campaign_id: int, occasion: str, now: datetime, clock: Clock,
                 only_ids: list[int] | None = None, max_seconds: float = 240.0,
                 sleep: Callable[[float], None] = time.sleep, batch: int | None = None,
                 rate: float | None = None) -> RunResult:
    """Send one occasion of an email campaign to its eligible treatment members.

    `only_ids` limits it to some customers (on-entry). Stops after `max_seconds` with
    status "more" so the task can continue in a fresh task (safe: sent rows are skipped)."""
    batch, rate = batch or batch_size(), rate or rate_per_second()
    result = RunResult()
    with _run_lock(campaign_id) as got:
        if not got:
            result.status = "busy"
            return result
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.RUNNING or campaign.segment_id is None:
            result.status = "not_running"
            return result
        result.unknown = orphans_mark_unknown(campaign=campaign, now=clock())
        if only_ids is None:
            assign_members(campaign=campaign, now=now)
        started, after_id = time.monotonic(), 0
        while True:
            if not Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).exists():
                result.status = "not_running"  # paused or cancelled mid-run: stop between batches
                break
            batch_started = time.monotonic()
            people = _candidates(campaign=campaign, occasion=occasion, now=now, after_id=after_id, limit=batch,
                                 only_ids=only_ids)
            if not people:
                break
            backend = mail.get_connection(fail_silently=False)
            try:
                for person in people:
                    after_id = person.pk
                    _send_one(campaign, person, occasion, result, backend, clock)
            finally:
                backend.close()
            if len(people) < batch:
                break
            # Rate limit: a batch of N takes at least N / rate seconds.
            pause = len(people) / rate - (time.monotonic() - batch_started)
            if pause > 0:
                sleep(pause)
            if time.monotonic() - started > max_seconds:
                result.status = "more"
                break
    return result


def _send_one(campaign, person, occasion, result: RunResult, backend, clock) -> None:
    now = clock()
    variant = person.variant_key or ""

    def suppress(reason: str) -> None:
        if _claim(campaign=campaign, customer_id=person.pk, occasion=occasion, variant=variant,
                  status=Send.Status.SUPPRESSED, reason=reason, now=now):
            result.suppressed += 1

    if not person.consented:
        return suppress("no_consent")
    if not (person.email or "").strip():
        return suppress("no_address")
    if campaign.cap_max_sends and campaign.cap_days and (getattr(person, "recent", 0) or 0) >= campaign.cap_max_sends:
        return suppress("frequency_cap")
    unsubscribe = unsubscribe_url(unsubscribe_token(campaign, person))
    try:
        rendered = personalisation.render_email(_content_for(campaign, variant),
                                          personalisation.customer_context(person, extra={"unsubscribe_url": unsubscribe}))
    except Exception as error:  # DomainError from the template: this recipient fails, unclaimed → failed row
        if _claim(campaign=campaign, customer_id=person.pk, occasion=occasion, variant=variant,
                  status=Send.Status.FAILED, error=str(error), now=now):
            result.failed += 1
        return
    send_id = _claim(campaign=campaign, customer_id=person.pk, occasion=occasion, variant=variant,
                     status=Send.Status.QUEUED, now=now)
    if send_id is None:
        result.already += 1
        return
    try:
        delivered = _deliver(backend, _message(campaign, person, rendered, unsubscribe))
    except SoftTimeLimitExceeded:
        raise  # ambiguous like a crash: the row stays queued and becomes "unknown"
    except Exception as error:  # the backend said no (SMTP refusal, connection refused)
        _finish(send_id, status=Send.Status.FAILED, now=clock(), error=f"{type(error).__name__}: {error}")
        result.failed += 1
        return
    if delivered:
        _finish(send_id, status=Send.Status.SENT, now=clock())
        result.sent += 1
    else:
        _finish(send_id, status=Send.Status.FAILED, now=clock(), error="The email backend accepted nothing.")
        result.failed += 1
