"""Celery tasks of campaigns: thin, taking ids and ISO times (house rule 4).

Every task is safe to run twice: sends are claimed per (campaign, customer, occasion)
before sending (campaigns.sending), webhook deliveries are unique per (endpoint, change).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from campaigns import review, scheduling, sending, webhooks
from ops.tasking import for_each_tenant, public_task, send_to_tenant, tenant_task
from tenants.models import Tenant
from tenants.selectors import tenant_url

LIMITS = {"soft_time_limit": 300, "time_limit": 360}


@tenant_task(name="campaigns.send_occasion", **LIMITS)
def send_occasion(*, campaign_id: int, occasion: str, now_iso: str) -> dict:
    """One occasion of an email campaign; continues itself in a new task when the batch
    budget (under the time limit) runs out."""
    now = datetime.fromisoformat(now_iso)
    result = sending.run_occasion(campaign_id=campaign_id, occasion=occasion, now=now, clock=timezone.now)
    if result.status == "more":
        send_to_tenant(send_occasion, schema_name=connection.schema_name, campaign_id=campaign_id, occasion=occasion,
                       now_iso=now_iso)
    elif result.status == "done":
        scheduling.occasion_finished(campaign_id=campaign_id, now=timezone.now())
    return result.as_dict()


@tenant_task(name="campaigns.send_entries", **LIMITS)
def send_entries(*, campaign_id: int) -> dict:
    result = scheduling.run_entries(campaign_id=campaign_id, now=timezone.now(), clock=timezone.now)
    if result["status"] == "more":
        send_to_tenant(send_entries, schema_name=connection.schema_name, campaign_id=campaign_id)
    return result


@tenant_task(name="campaigns.deliver_webhooks", **LIMITS)
def deliver_webhooks() -> dict:
    return webhooks.deliver_due(now=timezone.now(), clock=timezone.now)


@tenant_task(name="campaigns.tick", soft_time_limit=60, time_limit=90)
def tick(now_iso: str | None = None) -> dict:
    """Dispatcher inside one tenant: enqueue what is due (each in its own task)."""
    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    plan = scheduling.tick(now=now)
    schema = connection.schema_name
    for campaign_id, occasion in plan["occasions"]:
        send_to_tenant(send_occasion, schema_name=schema, campaign_id=campaign_id, occasion=occasion,
                       now_iso=now.isoformat())
    for campaign_id in plan["on_entry"]:
        send_to_tenant(send_entries, schema_name=schema, campaign_id=campaign_id)
    send_to_tenant(deliver_webhooks, schema_name=schema)
    return {"paused": plan["paused"], "occasions": len(plan["occasions"]), "on_entry": len(plan["on_entry"])}


@public_task(name="campaigns.dispatch", soft_time_limit=60, time_limit=90)
def dispatch() -> int:
    return for_each_tenant(tick, now_iso=timezone.now().isoformat())


@tenant_task(name="campaigns.review_reminders", **LIMITS)
def review_reminders(*, now_iso: str) -> int:
    """The quarterly review: each owner with segments in the queue gets an email."""
    tenant = Tenant.objects.get(schema_name=connection.schema_name)
    return review.review_reminders_send(now=datetime.fromisoformat(now_iso), workspace=tenant.name,
                                        link=tenant_url(tenant, "/segments/review/?owner=me"))


@public_task(name="campaigns.dispatch_review_reminders", soft_time_limit=60, time_limit=90)
def dispatch_review_reminders() -> int:
    return for_each_tenant(review_reminders, now_iso=timezone.now().isoformat())
