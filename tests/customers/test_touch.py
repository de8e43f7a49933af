"""customers.touch: the explicit hand-off of new customer data to the rooms above."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import transaction

from customers import touch as touch_module
from customers.touch import Touch, merged, touched
from segments import scheduling
from segments.models import Segment

T0 = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
_calls: list = []


def remember_touch(touch: Touch) -> None:
    _calls.append(("touch", touch))


def remember_merge(*, survivor: int, losers: list[int], now: datetime) -> None:
    _calls.append(("merge", survivor, losers, now))


@pytest.fixture
def handlers(settings):
    _calls.clear()
    settings.CUSTOMER_TOUCH_HANDLERS = ["tests.customers.test_touch.remember_touch"]
    settings.CUSTOMER_MERGE_HANDLERS = ["tests.customers.test_touch.remember_merge"]
    yield _calls
    _calls.clear()


def test_a_touch_names_its_customers_and_drops_empty_names():
    """Survivors of merges are touched customers too; a name that reached nobody is dropped."""
    touch = Touch.of(customer_ids=[3, 1], events={"login": {1}, "purchase": set()}, merged=[7])
    assert touch.customer_ids == {1, 3, 7} and touch.events == {"login": {1}} and touch.merged == {7}
    assert touch.as_payload() == {"customer_ids": [1, 3, 7], "events": {"login": [1]}, "traits": {}, "surveys": {},
                                  "channels": {}, "merged": [7]}
    assert Touch.from_payload(touch.as_payload()) == touch


def test_handlers_hear_of_a_touch_only_once_the_write_commits(db, handlers, django_capture_on_commit_callbacks):
    """Nothing is handed over while the write's transaction is open, and nothing for a
    write that rolls back."""
    touch = Touch.of(customer_ids=[1], traits={"plan": [1]})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        touched(touch)
        assert handlers == []
    assert handlers == [("touch", touch)] and len(callbacks) == 1

    handlers.clear()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                touched(touch)
                raise RuntimeError("the write failed")
    assert handlers == []


def test_a_write_that_reached_nobody_hands_nothing_over(db, handlers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        touched(Touch.of(customer_ids=[]))
    assert callbacks == [] and handlers == []


def test_merge_handlers_run_inside_the_merge(db, handlers, django_capture_on_commit_callbacks):
    """Each room moves its rows before the merged-away profiles are deleted: now, not on commit."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        merged(survivor=1, losers=(2, 3), now=T0)
    assert handlers == [("merge", 1, [2, 3], T0)] and callbacks == []


def test_the_configured_handlers_are_the_rooms_that_keep_per_customer_rows(settings):
    """segments queues re-checks and refreshes the lookup's answers; segments and campaigns
    move what they keep per customer, and the lookup drops what it stored."""
    names = [*settings.CUSTOMER_TOUCH_HANDLERS, *settings.CUSTOMER_MERGE_HANDLERS]
    assert touch_module._handlers(tuple(names))  # every name imports
    assert settings.CUSTOMER_TOUCH_HANDLERS == ["segments.tasks.customers_touched", "segments.lookup.customers_touched"]
    assert set(settings.CUSTOMER_MERGE_HANDLERS) == {"segments.engine.merges.customers_merged",
                                                     "campaigns.services.merges.customers_merged",
                                                     "segments.lookup.customers_merged"}


def test_scheduling_wants_checks_only_with_an_active_dynamic_segment(in_tenant):
    """A workspace without dynamic segments queues no re-check for its data."""
    Segment.objects.all().delete()
    Segment.objects.create(key="t-static", name="Static", kind=Segment.Kind.STATIC)
    assert not scheduling.checks_wanted()
    Segment.objects.create(key="t-dynamic", name="Dynamic", definition_version=1, definition={
        "version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]})
    assert scheduling.checks_wanted()
