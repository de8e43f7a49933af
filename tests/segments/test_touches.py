"""New data waits in Redis for one re-check per tenant (segments/touches.py): a flood of
writes queues one check, the check covers all of them, a redelivered check finds what it
took, a lost check is re-queued by the minute's sweep, and without Redis nothing is lost."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import redis
from django.db import connection

from config.celery import app
from customers.models import Customer
from customers.touch import Touch
from segments import tasks, touches
from segments.models import Membership
from segments.services import segment_create
from tests.conftest import membership_of, purge_queues

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
PRO = {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}


def freshness_waiting() -> int:
    with app.connection_for_read() as broker:
        return broker.default_channel.client.llen("freshness")


@pytest.fixture
def pros(in_tenant, tenant):
    purge_queues()  # and every pending touch, flag and taken list
    segment, _ = segment_create(actor=membership_of(tenant, "admin@alpha.test"), key="pros", name="Pros",
                                definition=PRO, now=NOW)
    yield segment
    purge_queues()


def test_a_flood_of_writes_queues_one_check_that_covers_them_all(pros):
    customers = [Customer.objects.create(external_id=f"t-{i}", plan="pro") for i in range(30)]
    for customer in customers:
        tasks.customers_touched(Touch.of(customer_ids=[customer.pk], traits={"plan": [customer.pk]}))
    assert freshness_waiting() == 1
    assert tasks.evaluate_touched.apply(kwargs={"now_iso": NOW.isoformat()}).get() == 1
    assert set(Membership.objects.filter(segment=pros, exited_at__isnull=True).values_list("customer_id", flat=True)) \
        == {c.pk for c in customers}
    assert touches.take(check_id="after") is None  # nothing left pending
    later = Customer.objects.create(external_id="t-late", plan="pro")
    tasks.customers_touched(Touch.of(customer_ids=[later.pk], traits={"plan": [later.pk]}))
    assert freshness_waiting() == 2  # the first check cleared its flag: the next write queues the next


def test_each_tenant_has_at_most_one_check_queued(pros, tenant, other_tenant):
    ids = list(Customer.objects.bulk_create(Customer(external_id=f"f-{i}") for i in range(5)))
    for customer in ids * 20:
        tasks.customers_touched(Touch.of(customer_ids=[customer.pk], events={"opened": [customer.pk]}))
    connection.set_tenant(other_tenant)
    segment_create(actor=membership_of(other_tenant, "admin@beta.test"), key="beta-pros", name="Pros",
                   definition=PRO, now=NOW)
    tasks.customers_touched(Touch.of(customer_ids=[1], traits={"plan": [1]}))
    connection.set_tenant(tenant)
    assert freshness_waiting() == 2  # one for alpha's hundred writes, one for beta's


def test_a_redelivered_check_finds_what_it_took(pros):
    first = Touch.of(customer_ids=[1, 2], events={"opened": [1, 2]})
    second = Touch.of(customer_ids=[3], events={"opened": [3], "paid": [3]}, traits={"plan": [3]})
    assert touches.pending_add(first) is True
    assert touches.pending_add(second) is False  # a check is already queued
    taken = touches.take(check_id="c1")
    assert taken == Touch.combined([first, second])
    assert taken.events == {"opened": frozenset({1, 2, 3}), "paid": frozenset({3})}
    assert touches.pending_add(Touch.of(customer_ids=[9], events={"opened": [9]})) is True  # the next check
    assert touches.take(check_id="c1") == taken  # the worker died: the same check again
    touches.done(check_id="c1")
    assert touches.take(check_id="c1").customer_ids == {9}  # what came after is the next check's


def test_the_minute_sweep_queues_a_check_for_stranded_touches(pros):
    touches.pending_add(Touch.of(customer_ids=[5], events={"opened": [5]}))
    touches._client("x").delete(touches._keys()[1])  # the flag expired: its check was lost
    assert touches.stranded() is True and touches.stranded() is False
    tasks.evaluate_due(now_iso=NOW.isoformat())
    assert freshness_waiting() == 0  # the sweep flagged it already above; nothing doubled
    touches._client("x").delete(touches._keys()[1])
    tasks.evaluate_due(now_iso=NOW.isoformat())
    assert freshness_waiting() == 1


def test_without_redis_the_check_carries_its_touch(pros, monkeypatch):
    sent = []

    def unreachable(touch):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(touches, "pending_add", unreachable)
    monkeypatch.setattr(tasks, "send_to_tenant", lambda task, **kwargs: sent.append(kwargs))
    touch = Touch.of(customer_ids=[7], traits={"plan": [7]})
    tasks.customers_touched(touch)
    assert len(sent) == 1 and Touch.from_payload({k: v for k, v in sent[0].items() if k != "schema_name"}) == touch
