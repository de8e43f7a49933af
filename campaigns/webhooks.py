"""Webhook destinations: a segment's entered/exited changes POSTed as signed JSON.

Delivery is **at-least-once** (unlike email, see campaigns.sending): a receiver may see a
message again after a timeout, and deduplicates by the `webhook-id` header, which is
stable per (endpoint, change). Signatures follow Standard Webhooks: the key is the base64
after "whsec_", the signed content is "<id>.<timestamp>.<body>", and the header is
"v1,<base64 HMAC-SHA256>".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from django.db import transaction

from campaigns import ssrf
from campaigns.models import Assignment, Campaign, WebhookDelivery, WebhookEndpoint
from campaigns.sending import assignments_ensure
from common.clock import Clock
from customers.models import Customer
from segments.models import MembershipChange

MAX_ATTEMPTS = 8
BATCH = 500


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "user-agent": "Strata-Webhooks/1",
            "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)}


def backoff(attempts: int) -> timedelta:
    """After the n-th failed attempt: 30 s, 2 min, 8 min, 32 min, … capped at 12 h."""
    return timedelta(seconds=min(30 * 4 ** (attempts - 1), 12 * 3600))


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


@transaction.atomic
def deliveries_enqueue(*, endpoint_id: int) -> int:
    """Turn the endpoint's segment's changes after its cursor into pending deliveries and
    move the cursor, in one transaction (a rerun creates nothing twice: unique per change)."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, active=True).first()
    if endpoint is None or endpoint.segment_id is None:
        return 0
    changes = list(MembershipChange.objects.filter(segment_id=endpoint.segment_id, id__gt=endpoint.cursor)
                   .order_by("id")[:BATCH * 10])
    if not changes:
        return 0
    external = dict(Customer.objects.filter(id__in={c.customer_id for c in changes}).values_list("id", "external_id"))
    withheld = _held_out(endpoint, changes)
    rows = [WebhookDelivery(
        endpoint=endpoint, change_id=c.pk, next_attempt_at=c.at,
        payload={"type": f"segment.{c.change}", "timestamp": c.at.isoformat(),
                 "data": {"segment": endpoint.segment_label, "segment_id": endpoint.segment_id,
                          "customer_id": external.get(c.customer_id), "change": c.change, "at": c.at.isoformat()}})
        for c in changes if c.change in endpoint.events and c.customer_id not in withheld]
    created = WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    endpoint.cursor = changes[-1].pk
    endpoint.save(update_fields=["cursor", "updated_at"])
    return len(created)


def _held_out(endpoint: WebhookEndpoint, changes: list[MembershipChange]) -> set[int]:
    """Customers in the holdout of a running webhook campaign that delivers through this
    endpoint: the receiver acts on what it is sent, so their changes are not sent (the
    campaign's lift is measured against them). Entering customers get their arm now, at
    the time they entered, like an on-entry email campaign's."""
    campaigns = list(Campaign.objects.filter(channel=Campaign.Channel.WEBHOOK, status=Campaign.Status.RUNNING,
                                             segment_id=endpoint.segment_id, content__endpoint_id=endpoint.pk))
    if not campaigns:
        return set()
    entered_at: dict[datetime, list[int]] = {}
    for change in changes:
        if change.change == MembershipChange.Change.ENTERED:
            entered_at.setdefault(change.at, []).append(change.customer_id)
    for campaign in campaigns:
        for at, customer_ids in entered_at.items():  # one evaluation's changes share their time
            assignments_ensure(campaign=campaign, customer_ids=customer_ids, now=at)
    return set(Assignment.objects.filter(campaign__in=campaigns, customer_id__in={c.customer_id for c in changes},
                                         group="holdout").values_list("customer_id", flat=True))


def message_id(delivery: WebhookDelivery) -> str:
    return f"msg_{delivery.endpoint_id}_{delivery.change_id}"


def attempt(*, delivery_id: int, now: datetime, resolver: ssrf.Resolver | None = None) -> str:
    """One attempt at one due delivery; its row is locked meanwhile (SKIP LOCKED: two
    workers never post the same delivery at the same time)."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True).select_related("endpoint")
                    .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).first())
        if delivery is None:
            return "skipped"
        endpoint = delivery.endpoint
        if not endpoint.active:
            return "inactive"
        body = body_of(delivery.payload)
        headers = headers_for(secret=endpoint.secret, msg_id=message_id(delivery), timestamp=int(now.timestamp()),
                              body=body)
        delivery.attempts += 1
        try:
            response = ssrf.post(endpoint.url, body=body, headers=headers, resolver=resolver)
            delivery.response_code, ok = response.status, 200 <= response.status < 300
            delivery.error = "" if ok else response.body[:500].decode("utf-8", "replace")
        except ssrf.UnsafeURL as error:
            delivery.response_code, ok = None, False
            delivery.error = f"refused: {error.code}: {error.message}"
        except OSError as error:
            delivery.response_code, ok = None, False
            delivery.error = f"{type(error).__name__}: {error}"[:500]
        if ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        delivery.save(update_fields=["status", "attempts", "response_code", "error", "next_attempt_at",
                                     "delivered_at", "updated_at"])
        return delivery.status


def deliver_due(*, now: datetime, clock: Clock, limit: int = 200,
                resolver: ssrf.Resolver | None = None) -> dict[str, int]:
    """Enqueue new changes of every active endpoint, then attempt what is due."""
    for endpoint_id in WebhookEndpoint.objects.filter(active=True, segment__isnull=False).values_list("pk", flat=True):
        deliveries_enqueue(endpoint_id=endpoint_id)
    counts: dict[str, int] = {}
    due = (WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now,
                                          endpoint__active=True)
           .order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])
    for delivery_id in list(due):
        outcome = attempt(delivery_id=delivery_id, now=clock(), resolver=resolver)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def send_test(*, endpoint: WebhookEndpoint, now: datetime, resolver: ssrf.Resolver | None = None) -> dict:
    """POST a `webhook.test` message now (the "send test" button); nothing is stored."""
    payload = {"type": "webhook.test", "timestamp": now.isoformat(),
               "data": {"segment": endpoint.segment_label, "segment_id": endpoint.segment_id}}
    body = body_of(payload)
    msg = f"msg_test_{endpoint.pk}_{int(now.timestamp())}"
    try:
        response = ssrf.post(endpoint.url, body=body,
                             headers=headers_for(secret=endpoint.secret, msg_id=msg, timestamp=int(now.timestamp()),
                                                 body=body), resolver=resolver)
    except ssrf.UnsafeURL as error:
        return {"ok": False, "status": None, "error": f"{error.code}: {error.message}"}
    except OSError as error:
        return {"ok": False, "status": None, "error": f"{type(error).__name__}: {error}"}
    return {"ok": 200 <= response.status < 300, "status": response.status, "error": ""}
