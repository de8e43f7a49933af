"""With a real Celery worker: new data moves customers in and out of dynamic segments with
no manual trigger, and a segment saved through the service is evaluated by the worker."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apikeys.selectors import write_key_current
from customers.models import Customer
from segments import engine
from segments.models import Membership, Segment
from tests.conftest import host_of
from tests.threads import wait_for

pytestmark = pytest.mark.worker


def test_an_event_posted_to_v1_batch_moves_a_customer_into_a_segment(alpha_committed, celery_worker):
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        key = write_key_current().key
        segment = Segment.objects.create(key=f"{tag}-logins", name="Logged in twice", definition_version=1,
                                         definition={"version": 1, "match": "all", "conditions": [
                                             {"type": "event", "event": "login", "count": {"op": "gte", "value": 2}}]})
        engine.evaluate(segment_id=segment.pk, now=timezone.now(), trigger="manual", clock=timezone.now)
    user = f"{tag}-ada"
    batch = {"writeKey": key, "batch": [{"type": "track", "userId": user, "event": "login", "messageId": f"{user}-{i}"}
                                        for i in range(2)]}
    response = Client(HTTP_HOST=host_of(tenant)).post("/v1/batch", json.dumps(batch), content_type="application/json")
    assert response.status_code == 200

    def member() -> bool:
        with schema_context(tenant.schema_name):
            return Membership.objects.filter(segment=segment, customer__external_id=user, exited_at__isnull=True).exists()

    assert wait_for(member), "the worker never moved the customer into the segment"
    with schema_context(tenant.schema_name):
        evaluation = segment.evaluations.filter(trigger="ingest").get()
        assert (evaluation.incremental, evaluation.customers_checked, evaluation.entered) == (True, 1, 1)


def test_a_segment_saved_through_the_service_is_evaluated_by_the_worker(alpha_committed, celery_worker):
    from segments.services import segment_create
    from tests.conftest import membership_of

    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        Customer.objects.create(external_id=f"{tag}-pro", plan="pro")
        admin = membership_of(tenant, "admin@alpha.test")
        segment, _ = segment_create(actor=admin, key=f"{tag}-pro", name="Pro", now=timezone.now(), definition={
            "version": 1, "match": "all", "conditions": [
                {"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]})

    def evaluated() -> bool:
        with schema_context(tenant.schema_name):
            return Segment.objects.get(pk=segment.pk).last_evaluated_at is not None

    assert wait_for(evaluated)
    with schema_context(tenant.schema_name):
        assert Membership.objects.filter(segment=segment, customer__external_id=f"{tag}-pro").exists()
        assert segment.evaluations.get().trigger == "edit"


def test_a_check_that_loses_the_race_to_a_later_one_still_checks_its_customers(alpha_committed, celery_worker):
    """Two ingest-triggered checks of one segment run at once; the one whose `now` is later
    takes the segment first. The other's customers must still be checked (they used to be
    skipped: "Membership already reflects …"). The worker gets the interleaving exactly:
    the later check first, then the earlier one."""
    from datetime import timedelta

    from ops.tasking import send_to_tenant
    from segments.tasks import evaluate_touched

    tenant, tag = alpha_committed
    start = timezone.now()
    with schema_context(tenant.schema_name):
        segment = Segment.objects.create(key=f"{tag}-pros", name="Pros", definition_version=1, definition={
            "version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]})
        engine.evaluate(segment_id=segment.pk, now=start, trigger="manual", clock=timezone.now)
        later, earlier = (Customer.objects.create(external_id=f"{tag}-{name}", plan="pro") for name in ("x", "y"))

    def member(customer) -> bool:
        with schema_context(tenant.schema_name):
            return Membership.objects.filter(segment=segment, customer=customer, exited_at__isnull=True).exists()

    def checked(**touch_and_now):
        send_to_tenant(evaluate_touched, schema_name=tenant.schema_name, **touch_and_now)

    checked(customer_ids=[later.pk], traits={"plan": [later.pk]}, now_iso=(start + timedelta(seconds=2)).isoformat())
    assert wait_for(lambda: member(later))
    checked(customer_ids=[earlier.pk], traits={"plan": [earlier.pk]}, now_iso=(start + timedelta(seconds=1)).isoformat())
    assert wait_for(lambda: member(earlier)), "the earlier check was skipped: its customer was never checked"
    with schema_context(tenant.schema_name):
        raced = segment.evaluations.filter(trigger="ingest").order_by("id").last()
        assert (raced.status, raced.now, raced.entered) == ("succeeded", start + timedelta(seconds=2), 1)
