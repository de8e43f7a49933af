"""The daily rollups the triggers on customers_event keep, checked against the events
themselves after every kind of write: inserts in batches, deletes, merges that move events,
property rewrites, truncation; and a property's back-fill."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone as django_timezone

from customers.models import (Customer, Event, EventDay, EventDayValue, EventLifetime, EventTotal, RollupEvent,
                              RollupProperty)
from customers.rollups import (rollup_backfill, rollup_events_ready, rollup_lifetimes_ready, rollup_properties_ready,
                               rollups_request)
from tests.customers.migrating import migrated_to, scratch_schema

DAY = datetime(2026, 5, 4, tzinfo=timezone.utc)

_DAYS_FROM_EVENTS = """
SELECT customer_id, e.name, (timestamp AT TIME ZONE 'UTC')::date, count(*), min(timestamp), max(timestamp)
FROM customers_event e JOIN customers_rollupevent r ON r.name = e.name GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_VALUES_FROM_EVENTS = """
SELECT e.customer_id, e.name, (e.timestamp AT TIME ZONE 'UTC')::date, p.property, count(*),
       sum((e.properties -> p.property)::numeric), min((e.properties -> p.property)::numeric),
       max((e.properties -> p.property)::numeric)
FROM customers_event e JOIN customers_rollupproperty p ON p.event = e.name
WHERE jsonb_typeof(e.properties -> p.property) = 'number' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""

_TOTALS_FROM_EVENTS = """
SELECT e.customer_id, e.name, p.property, count(*), sum((e.properties -> p.property)::numeric),
       min((e.properties -> p.property)::numeric), max((e.properties -> p.property)::numeric), max(e.timestamp)
FROM customers_event e JOIN customers_rollupproperty p ON p.event = e.name
WHERE jsonb_typeof(e.properties -> p.property) = 'number' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_LIFETIMES_FROM_EVENTS = """
SELECT customer_id, e.name, count(*), min(timestamp), max(timestamp)
FROM customers_event e JOIN customers_rollupevent r ON r.name = e.name GROUP BY 1, 2 ORDER BY 1, 2
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
    totals = [(t.customer_id, t.name, t.property, t.n, t.total, t.low, t.high, t.latest)
              for t in EventTotal.objects.order_by("customer_id", "name", "property")]
    assert totals == rows(_TOTALS_FROM_EVENTS)
    lifetimes = [(t.customer_id, t.name, t.events, t.first_at, t.last_at)
                 for t in EventLifetime.objects.order_by("customer_id", "name")]
    assert lifetimes == rows(_LIFETIMES_FROM_EVENTS)


@pytest.fixture
def shop(in_tenant):
    RollupProperty.objects.create(event="purchase", property="amount", requested_at=DAY, ready_at=DAY)
    for name in ("purchase", "login"):
        RollupEvent.objects.create(name=name, requested_at=DAY, ready_at=DAY, days_per_event=0.1)
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
    total = EventTotal.objects.get(customer=ada, name="purchase", property="amount")
    assert (total.n, total.total, total.latest) == (3, Decimal("10.6000001"), DAY + timedelta(days=1))
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
    assert not EventDay.objects.exists() and not EventDayValue.objects.exists() and not EventTotal.objects.exists()
    assert not EventLifetime.objects.exists()
    carol = Customer.objects.create(external_id="carol")
    Event.objects.create(customer=carol, name="login", timestamp=DAY)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction holds deferred FK checks
        cursor.execute("TRUNCATE customers_event")
    assert not EventDay.objects.exists() and not EventLifetime.objects.exists()


def test_truncating_customers_with_cascade_empties_the_rollups(shop):
    """TRUNCATE … CASCADE reaches events and rollups in one statement; the events' truncate
    trigger must not truncate the rollups a second time (ObjectInUse)."""
    ada, _ = shop
    rollups_request(events=["login"], properties=[], now=DAY)
    Event.objects.create(customer=ada, name="login", timestamp=DAY)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_rollupevent SET ready_at = now()")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE customers_customer CASCADE")
    assert not Event.objects.exists() and not EventDay.objects.exists()


def test_requested_rollups_are_back_filled_then_ready(shop, django_capture_on_commit_callbacks, monkeypatch):
    ada, bob = shop
    Event.objects.create(customer=ada, name="signup", timestamp=DAY, properties={"seats": 3})
    Event.objects.create(customer=bob, name="signup", timestamp=DAY, properties={"seats": 4.25})
    Event.objects.create(customer=bob, name="signup", timestamp=DAY + timedelta(minutes=5), properties={"seats": 2})
    assert not EventDay.objects.filter(name="signup").exists()  # not asked for: no day rows
    now = django_timezone.now()
    with django_capture_on_commit_callbacks() as callbacks:
        fresh = rollups_request(events=["signup", "login"], properties=[("signup", "seats"), ("purchase", "amount")],
                                now=now)
    assert [(type(p).__name__, p.ready_at) for p in fresh] == [("RollupEvent", None), ("RollupProperty", None)]
    assert len(callbacks) == 2  # a back-fill task for each new one
    assert "signup" not in rollup_events_ready() and ("signup", "seats") not in rollup_properties_ready()
    # Events that arrive after the request are added by the triggers, stored ones by the back-fill.
    Event.objects.create(customer=bob, name="signup", timestamp=DAY + timedelta(hours=3), properties={"seats": 1})
    monkeypatch.setattr("customers.rollups.BACKFILL_CUSTOMERS", 1)  # one locked range per customer
    seen = []
    days = rollup_backfill(kind="event", rollup_id=fresh[0].pk, clock=lambda: now,
                           progress=lambda d, t: seen.append((d, t)))
    values = rollup_backfill(kind="property", rollup_id=fresh[1].pk, clock=lambda: now)
    assert seen[-1][0] == seen[-1][1] >= 2
    assert days.ready_at == values.ready_at == now and ("signup", "seats") in rollup_properties_ready()
    assert days.days_per_event == 2 / 4  # four events on two (customer, day) rows
    assert "signup" not in rollup_events_ready()  # half as many rows as events: not below the bar
    assert "signup" in rollup_lifetimes_ready()  # a row per customer pays off whatever the days
    assert_rollups_match_events()
    assert rollup_backfill(kind="property", rollup_id=fresh[1].pk, clock=lambda: now).ready_at == now  # again
    assert_rollups_match_events()


def test_day_rows_are_read_only_where_they_pay_off(in_tenant):
    now = django_timezone.now()
    ada = Customer.objects.create(external_id="ada")
    Event.objects.bulk_create([Event(customer=ada, name="login", timestamp=DAY + timedelta(minutes=i))
                               for i in range(40)])  # 40 events, one day row
    Event.objects.bulk_create([Event(customer=ada, name="opened", timestamp=DAY - timedelta(days=i + 1))
                               for i in range(40)])  # a day row per event
    for rollup in rollups_request(events=["login", "opened"], now=now):
        rollup_backfill(kind="event", rollup_id=rollup.pk, clock=lambda: now)
    assert rollup_events_ready() == {"login"}
    assert_rollups_match_events()


def test_saving_a_rule_asks_for_the_rollups_it_can_read(tenant, django_capture_on_commit_callbacks):
    import json

    from tests.conftest import session

    definition = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "purchase", "aggregate": {"fn": "sum", "property": "amount", "op": "gte", "value": 9}},
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}},
        {"type": "event", "event": "churned", "count": {"op": "eq", "value": 0}},  # never: the lifetime answers
        {"type": "event", "event": "opened", "count": {"op": "gte", "value": 1}, "window": {"last": "7d"}}]}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = session(tenant).post("/api/v1/segments/", json.dumps(
            {"key": "big-spenders", "name": "Big spenders", "definition": definition}), content_type="application/json")
    assert response.status_code == 201, response.content
    connection.set_tenant(tenant)
    assert list(RollupProperty.objects.values_list("event", "property", "ready_at")) == [("purchase", "amount", None)]
    # "opened in the last 7 days" is an index probe of one week's events: nothing to roll up
    assert list(RollupEvent.objects.values_list("name", "ready_at").order_by("name")) == [("churned", None),
                                                                                         ("login", None)]
    assert len(callbacks) >= 3  # the two back-fills and the first evaluation


def test_the_lifetimes_migration_sums_the_day_rows_and_goes_back(db):
    """0027 gives every customer's rolled-up event a lifetime row from its day rows and
    makes the triggers keep it; its reverse leaves triggers that no longer write it."""
    schema = "t_lifetime_migration"
    scratch_schema(schema, at="0026")
    insert = ("INSERT INTO customers_event (customer_id, name, timestamp, properties, received_at, source) "
              "SELECT %s, 'x', t, '{}', now(), 'api' FROM unnest(%s::timestamptz[]) t")
    with migrated_to(schema, "0026") as cursor:
        cursor.execute("INSERT INTO customers_rollupevent (name, requested_at, ready_at) VALUES ('x', now(), now())")
        cursor.execute("INSERT INTO customers_customer (external_id, anonymous_ids, traits, created_at, updated_at) "
                       "VALUES ('mig', '{}', '{}', now(), now()) RETURNING id")
        (customer,) = cursor.fetchone()
        cursor.execute(insert, [customer, [DAY, DAY + timedelta(days=3), DAY + timedelta(days=3, hours=1)]])
    with migrated_to(schema, "0027") as cursor:
        cursor.execute("SELECT events, first_at, last_at FROM customers_eventlifetime")
        assert cursor.fetchall() == [(3, DAY, DAY + timedelta(days=3, hours=1))]
        cursor.execute(insert, [customer, [DAY - timedelta(days=1)]])
        cursor.execute("SELECT events, first_at FROM customers_eventlifetime")
        assert cursor.fetchall() == [(4, DAY - timedelta(days=1))]
    with migrated_to(schema, "0026") as cursor:
        cursor.execute(insert, [customer, [DAY + timedelta(days=9)]])  # the triggers work without the table
        cursor.execute("DELETE FROM customers_event WHERE timestamp = %s", [DAY])
        cursor.execute("SELECT sum(events) FROM customers_eventday")
        assert cursor.fetchone() == (4,)
        cursor.execute("SELECT to_regclass('customers_eventlifetime')")
        assert cursor.fetchone() == (None,)
