"""The daily rollups the triggers on customers_event keep, checked against the events
themselves after every kind of write: inserts in batches, deletes, merges that move events,
property rewrites, truncation; and a property's back-fill."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone as django_timezone

from customers.models import Customer, Event, EventDay, EventDayValue, RollupProperty
from customers.rollups import rollup_backfill, rollup_properties_ready, rollup_properties_request

DAY = datetime(2026, 5, 4, tzinfo=timezone.utc)

_DAYS_FROM_EVENTS = """
SELECT customer_id, name, (timestamp AT TIME ZONE 'UTC')::date, count(*), min(timestamp), max(timestamp)
FROM customers_event GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_VALUES_FROM_EVENTS = """
SELECT e.customer_id, e.name, (e.timestamp AT TIME ZONE 'UTC')::date, p.property, count(*),
       sum((e.properties -> p.property)::numeric), min((e.properties -> p.property)::numeric),
       max((e.properties -> p.property)::numeric)
FROM customers_event e JOIN customers_rollupproperty p ON p.event = e.name
WHERE jsonb_typeof(e.properties -> p.property) = 'number' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def assert_rollups_match_events() -> None:
    days = [(d.customer_id, d.name, d.day, d.events, d.first_at, d.last_at)
            for d in EventDay.objects.order_by("customer_id", "name", "day")]
    assert days == rows(_DAYS_FROM_EVENTS)
    values = [(v.customer_id, v.name, v.day, v.property, v.n, v.total, v.low, v.high)
              for v in EventDayValue.objects.order_by("customer_id", "name", "day", "property")]
    assert values == rows(_VALUES_FROM_EVENTS)


@pytest.fixture
def shop(in_tenant):
    RollupProperty.objects.create(event="purchase", property="amount", requested_at=DAY, ready_at=DAY)
    ada, bob = (Customer.objects.create(external_id=x) for x in ("ada", "bob"))
    Event.objects.bulk_create([
        Event(customer=ada, name="purchase", timestamp=DAY + timedelta(hours=1), properties={"amount": 10.5}),
        Event(customer=ada, name="purchase", timestamp=DAY + timedelta(hours=23, minutes=59),
              properties={"amount": "12"}),  # a string: counted as an event, not as a value
        Event(customer=ada, name="purchase", timestamp=DAY + timedelta(days=1), properties={"amount": 1e-7}),
        Event(customer=bob, name="purchase", timestamp=DAY, properties={"amount": -3}),
        Event(customer=bob, name="login", timestamp=DAY + timedelta(hours=5), properties={}),
    ])
    return ada, bob


def test_inserts_add_to_their_day_and_values_stay_exact(shop):
    ada, bob = shop
    assert_rollups_match_events()
    day = EventDay.objects.get(customer=ada, name="purchase", day=DAY.date())
    assert (day.events, day.first_at, day.last_at) == (2, DAY + timedelta(hours=1), DAY + timedelta(hours=23, minutes=59))
    value = EventDayValue.objects.get(customer=ada, name="purchase", day=DAY.date(), property="amount")
    assert (value.n, value.total) == (1, Decimal("10.5"))
    Event.objects.create(customer=ada, name="purchase", timestamp=DAY + timedelta(hours=2), properties={"amount": 0.1})
    assert EventDayValue.objects.get(customer=ada, name="purchase", day=DAY.date()).total == Decimal("10.6")
    assert_rollups_match_events()


def test_deletes_updates_merges_and_truncation_recount(shop):
    ada, bob = shop
    Event.objects.filter(customer=ada, timestamp=DAY + timedelta(hours=1)).delete()
    assert_rollups_match_events()
    Event.objects.filter(customer=bob, name="purchase").update(properties={"amount": 7})  # a rewrite
    assert_rollups_match_events()
    Event.objects.filter(customer=bob).update(timestamp=DAY - timedelta(days=3))  # moved to another day
    assert_rollups_match_events()
    Event.objects.filter(customer=ada).update(message_id=None)  # no rollup column: nothing to recount
    # A merge moves the loser's events to the survivor and deletes the loser.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_event SET customer_id = %s WHERE customer_id = %s", [ada.pk, bob.pk])
        cursor.execute("DELETE FROM customers_customer WHERE id = %s", [bob.pk])
    assert_rollups_match_events()
    assert not EventDay.objects.filter(customer_id=bob.pk).exists()
    ada.delete()  # the ORM's cascade
    assert not EventDay.objects.exists() and not EventDayValue.objects.exists()
    carol = Customer.objects.create(external_id="carol")
    Event.objects.create(customer=carol, name="login", timestamp=DAY)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction holds deferred FK checks
        cursor.execute("TRUNCATE customers_event")
    assert not EventDay.objects.exists()


def test_a_requested_property_is_back_filled_then_ready(shop, django_capture_on_commit_callbacks, monkeypatch):
    ada, bob = shop
    Event.objects.create(customer=ada, name="signup", timestamp=DAY, properties={"seats": 3})
    Event.objects.create(customer=bob, name="signup", timestamp=DAY, properties={"seats": 4.25})
    now = django_timezone.now()
    with django_capture_on_commit_callbacks() as callbacks:
        fresh = rollup_properties_request(pairs=[("signup", "seats"), ("purchase", "amount")], now=now)
    assert [(p.event, p.property, p.ready_at) for p in fresh] == [("signup", "seats", None)]
    assert len(callbacks) == 1  # one back-fill task, for the new pair
    assert ("signup", "seats") not in rollup_properties_ready()
    # Events that arrive after the request are added by the triggers, stored ones by the back-fill.
    Event.objects.create(customer=bob, name="signup", timestamp=DAY + timedelta(hours=3), properties={"seats": 1})
    monkeypatch.setattr("customers.rollups.BACKFILL_CUSTOMERS", 1)  # one locked range per customer
    seen = []
    rollup = rollup_backfill(property_id=fresh[0].pk, clock=lambda: now, progress=lambda d, t: seen.append((d, t)))
    assert rollup.ready_at == now and ("signup", "seats") in rollup_properties_ready()
    assert seen[-1][0] == seen[-1][1] >= 2
    assert_rollups_match_events()
    assert rollup_backfill(property_id=fresh[0].pk, clock=lambda: now).ready_at == now  # again: same rows
    assert_rollups_match_events()


def test_day_rollups_pay_off_only_where_customers_repeat_events_within_a_day(in_tenant):
    from customers.rollups import rollup_days_pay_off

    ada = Customer.objects.create(external_id="ada")
    Event.objects.bulk_create([Event(customer=ada, name="login", timestamp=DAY + timedelta(minutes=i))
                               for i in range(40)])  # 40 events, one day row
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_event, customers_eventday")
    assert rollup_days_pay_off()
    Event.objects.bulk_create([Event(customer=ada, name="login", timestamp=DAY - timedelta(days=i + 1))
                               for i in range(400)])  # a day row per event
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_event, customers_eventday")
    assert not rollup_days_pay_off()
