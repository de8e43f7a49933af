"""Scheduled evaluations take turns between tenants (segments/due_queue.py): one tenant's
backlog of due segments is sliced and queued behind the others, and no tenant has more
than one slice queued however often the dispatcher runs. The queue here is a FIFO list that
stands in for the broker's; each message runs its task in its tenant, as a worker would."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from segments import due_queue, tasks
from segments.models import SegmentEvaluation
from tests.segments.test_engine import customer, dynamic, pro_plan

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def broker(monkeypatch, tenant, other_tenant):
    queued: deque = deque()
    monkeypatch.setattr(tasks, "send_to_tenant",
                        lambda task, *, schema_name, **kwargs: queued.append((task.name, schema_name, kwargs)))
    for schema in (tenant.schema_name, other_tenant.schema_name):
        due_queue.release(schema)
    yield queued
    for schema in (tenant.schema_name, other_tenant.schema_name):
        due_queue.release(schema)


def drain(queued: deque) -> list[str]:
    """Run the queued slices in order; the segment keys evaluated, in the order they ran."""
    order = []
    while queued:
        name, schema, kwargs = queued.popleft()
        assert name == "segments.evaluate_due"
        with schema_context(schema):
            before = set(SegmentEvaluation.objects.values_list("pk", flat=True))
            tasks.evaluate_due(**kwargs)
            order += [f"{schema}:{key}" for key in SegmentEvaluation.objects.exclude(pk__in=before)
                      .order_by("pk").values_list("segment__key", flat=True)]
    return order


def test_a_tenant_with_a_backlog_takes_turns_with_the_others(broker, tenant, other_tenant, settings):
    settings.SEGMENT_DUE_SLICE_SECONDS = 0  # every slice starts one evaluation
    with schema_context(tenant.schema_name):
        customer("ada", plan="pro")
        for i in range(4):
            dynamic(f"big-{i}", pro_plan())
    with schema_context(other_tenant.schema_name):
        dynamic("small", pro_plan())
    assert tasks.dispatch_due() == 2
    assert tasks.dispatch_due() == 0  # both still queued: nothing doubled
    alpha, beta = tenant.schema_name, other_tenant.schema_name
    order = drain(broker)
    assert order[:2] == [f"{alpha}:big-0", f"{beta}:small"]  # beta waited for one slice, not four
    assert sorted(order) == sorted([f"{alpha}:big-{i}" for i in range(4)] + [f"{beta}:small"])
    assert tasks.dispatch_due() == 2  # the last slices released their tenants


def test_one_slice_evaluates_what_fits_in_its_budget(broker, tenant, settings):
    settings.SEGMENT_DUE_SLICE_SECONDS = 3600
    with schema_context(tenant.schema_name):
        for i in range(3):
            dynamic(f"seg-{i}", pro_plan())
    due_queue.claim(tenant.schema_name)
    broker.append(("segments.evaluate_due", tenant.schema_name, {"now_iso": NOW.isoformat()}))
    assert len(drain(broker)) == 3 and not broker  # one slice did all: nothing queued after it
    assert due_queue.claim(tenant.schema_name) is True  # and it released the tenant


def test_without_redis_the_dispatcher_still_queues(broker, monkeypatch, tenant, other_tenant):
    import redis

    def down(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(due_queue, "_client", down)
    assert tasks.dispatch_due() == 2 and tasks.dispatch_due() == 2  # a missed schedule is worse than a duplicate
    connection.set_schema_to_public()


def test_a_failed_slice_releases_its_tenant(broker, monkeypatch, tenant):
    from segments import scheduling

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(scheduling, "evaluate_due", broken)
    assert due_queue.claim(tenant.schema_name) is True
    with schema_context(tenant.schema_name), pytest.raises(RuntimeError):
        tasks.evaluate_due(now_iso=NOW.isoformat())
    assert due_queue.claim(tenant.schema_name) is True  # the next dispatch may queue it again
