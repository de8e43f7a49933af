"""Events partitioned by month (migration 0026, customers/partitions.py): rows land in their
month's table or the default one, the upkeep makes months ahead and moves waiting rows, and
retention drops whole months with what was derived from them: the rollups and totals stay
equal to a recount from the events left, message ids are forgotten with their events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from customers import partitions
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, Event, EventMessage, RollupEvent, RollupProperty
from tests.customers.migrating import migrated_to, scratch_schema
from tests.customers.test_rollups import assert_rollups_match_events

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def where(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM customers_event WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def track(event: str, at: datetime, message_id: str | None = None, user: str = "ada") -> Message:
    return Message(type="track", timestamp=at, event=event, user_id=user, message_id=message_id,
                   properties={"amount": 10} if event == "purchase" else {})


@pytest.fixture
def history(in_tenant):
    """A shop with rollups on and purchases over three years."""
    RollupProperty.objects.create(event="purchase", property="amount", requested_at=NOW, ready_at=NOW)
    RollupEvent.objects.create(name="purchase", requested_at=NOW, ready_at=NOW, days_per_event=0.1)
    times = [datetime(2024, 11, 30, 23, 59, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC),
             datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC)]
    messages = [track("purchase", at, f"m{i}{user[0]}", user) for i, at in enumerate(times) for user in ("ada", "bob")]
    result = ingest_messages(messages=messages, source="api", now=NOW)
    assert result.problems == []
    return times


def test_the_events_table_is_partitioned_by_month_with_a_default(in_tenant):
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relkind, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.oid = 'customers_event'::regclass")
        assert cursor.fetchone() == ("p", "RANGE (\"timestamp\")")
        cursor.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'customers_event_pkey' "
                       "AND conrelid = 'customers_event'::regclass")
        assert cursor.fetchone() == ("PRIMARY KEY (id, \"timestamp\")",)
    customer = Customer.objects.create(external_id="ada")
    event = Event.objects.create(customer=customer, name="x", timestamp=datetime(1999, 1, 1, tzinfo=UTC))
    assert where(event.pk) == partitions.DEFAULT


def test_upkeep_makes_this_month_and_the_next_two_and_moves_waiting_rows(history):
    before = list(Event.objects.order_by("id").values_list("id", "timestamp", "customer_id"))
    done = partitions.upkeep(now=NOW)
    months = partitions.event_months()
    for month in (date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1), date(2024, 11, 1), date(2025, 3, 1)):
        assert month in months
    assert done.cutoff is None and done.dropped == [] and done.removed == 0
    # Nothing is left waiting, nothing changed: the same rows, the rollups as before.
    assert not Event.objects.extra(where=["tableoid = 'customers_event_default'::regclass"]).exists()
    assert list(Event.objects.order_by("id").values_list("id", "timestamp", "customer_id")) == before
    first = Event.objects.get(message_id="m0a")
    assert where(first.pk) == "customers_event_y2024m11"
    assert_rollups_match_events()
    # A second run has nothing to do.
    again = partitions.upkeep(now=NOW)
    assert (again.created, again.moved) == ([], 0)


def test_new_events_go_to_their_months_table(history):
    partitions.upkeep(now=NOW)
    ingest_messages(messages=[track("login", NOW + timedelta(days=30), "late")], source="api", now=NOW)
    assert where(Event.objects.get(message_id="late").pk) == "customers_event_y2027m01"


def test_retention_drops_whole_months_and_what_came_of_them(history):
    partitions.upkeep(now=NOW)
    retention = partitions.retention_get()
    retention.event_months = 12
    retention.save()
    # A straggler older than the cutoff waits in the default partition: removed too.
    ingest_messages(messages=[track("purchase", datetime(2019, 5, 5, tzinfo=UTC), "old", "cy")], source="api", now=NOW)

    done = partitions.upkeep(now=NOW)

    assert done.cutoff == datetime(2025, 12, 1, tzinfo=UTC)
    assert "customers_event_y2024m11" in done.dropped and "customers_event_y2025m03" in done.dropped
    assert done.removed == 1
    assert set(Event.objects.values_list("timestamp", flat=True)) == {
        datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC)}
    assert all(m >= date(2025, 12, 1) for m in partitions.event_months())
    assert_rollups_match_events()  # days gone, totals summed again from the days left
    assert sorted(EventMessage.objects.values_list("message_id", flat=True)) == ["m2a", "m2b", "m3a", "m3b"]
    retention.refresh_from_db()
    assert (retention.pruned_before, retention.maintained_at) == (done.cutoff, NOW)


def test_a_customer_whose_every_value_is_dropped_loses_the_total(history):
    cy = ingest_messages(messages=[track("purchase", datetime(2025, 1, 3, tzinfo=UTC), "cy-only", "cy")],
                         source="api", now=NOW)
    assert cy.problems == []
    retention = partitions.retention_get()
    retention.event_months = 6
    retention.save()
    partitions.upkeep(now=NOW)
    assert_rollups_match_events()
    cy_customer = Customer.objects.get(external_id="cy")
    assert not cy_customer.events.exists()


def test_a_retried_message_is_stored_once_across_months(history):
    partitions.upkeep(now=NOW)
    count = Event.objects.count()
    retry = ingest_messages(messages=[track("purchase", datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=40), "m2a")],
                            source="api", now=NOW)
    assert retry.problems == []
    assert Event.objects.count() == count  # same id, another month: still a duplicate
    twice = ingest_messages(messages=[track("login", NOW, "dup"), track("login", NOW + timedelta(seconds=1), "dup")],
                            source="api", now=NOW)
    assert twice.problems == []
    assert list(Event.objects.filter(message_id="dup").values_list("timestamp", flat=True)) == [NOW]


def test_upkeep_in_one_tenant_leaves_the_other_alone(history, tenant, other_tenant):
    from django_tenants.utils import schema_context

    with schema_context(other_tenant.schema_name):
        beta_months = partitions.event_months()
    retention = partitions.retention_get()
    retention.event_months = 1
    retention.save()
    partitions.upkeep(now=NOW)
    with schema_context(other_tenant.schema_name):
        assert partitions.event_months() == beta_months
        assert partitions.retention_get().event_months is None


def test_a_new_workspace_has_this_month_and_the_next_two(tenant, other_tenant):
    from django_tenants.utils import schema_context

    current = partitions.month_of(datetime.now(UTC))
    for workspace in (tenant, other_tenant):
        with schema_context(workspace.schema_name):
            assert {partitions.add_months(current, n) for n in range(3)} <= set(partitions.event_months())


def test_month_arithmetic():
    assert partitions.add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)
    assert partitions.add_months(date(2026, 1, 1), -13) == date(2024, 12, 1)
    assert partitions.bounds(date(2026, 2, 1)) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert partitions.months_between(datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)) == [
        date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
    assert partitions.partition_name(date(2026, 3, 1)) == "customers_event_y2026m03"


def test_an_upkeep_kept_waiting_by_a_long_query_gives_up_and_is_tried_again(history, monkeypatch):
    from customers import tasks

    partitions.upkeep(now=NOW)
    retention = partitions.retention_get()
    retention.event_months = 12
    retention.save()
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "200ms")
    sent = []
    monkeypatch.setattr(tasks, "send_to_tenant", lambda task, **kwargs: sent.append(kwargs))
    reader = connection.get_new_connection(connection.get_connection_params())
    try:
        # A report reading the events: it holds the table while detaching a month needs it alone.
        reader.execute(f'SET search_path TO "{connection.schema_name}"')
        reader.execute("BEGIN")
        # (ONLY: the months this test made are not committed, so the reader cannot see them.)
        reader.execute("LOCK TABLE ONLY customers_event IN ACCESS SHARE MODE")
        count = Event.objects.count()
        assert tasks.event_upkeep.run(now_iso=NOW.isoformat()) == {"blocked": True, "attempt": 1}
        assert Event.objects.count() == count  # nothing of the step was done
        assert sent == [{"schema_name": connection.schema_name, "countdown": tasks.UPKEEP_RETRY_SECONDS,
                         "now_iso": NOW.isoformat(), "attempt": 2}]
        assert tasks.event_upkeep.run(now_iso=NOW.isoformat(), attempt=tasks.UPKEEP_ATTEMPTS)["blocked"]
        assert len(sent) == 1  # the last attempt leaves it to the next night
    finally:
        reader.close()
    done = tasks.event_upkeep.run(now_iso=NOW.isoformat())
    assert "customers_event_y2025m03" in done["dropped"]


def test_the_home_pages_estimate_sums_the_months(history, monkeypatch):
    from customers import selectors

    partitions.upkeep(now=NOW)  # analyses every month
    monkeypatch.setattr(selectors, "EXACT_BELOW", -1)  # as for a big workspace: from the statistics alone
    assert selectors.workspace_counts()["events"] == Event.objects.count() == 8


def test_the_migration_keeps_every_event_both_ways(db):
    """0026 rebuilds the events table partitioned (message ids into their own table) and its
    reverse rebuilds it plain, with the unique message id index: no event lost either way."""
    schema = "t_partition_migration"
    scratch_schema(schema, at="0025")
    with migrated_to(schema, "0025") as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'customers_event'::regclass")
        assert cursor.fetchone() == ("r",)
        cursor.execute("INSERT INTO customers_customer (external_id, anonymous_ids, traits, created_at, updated_at) "
                       "VALUES ('mig', '{}', '{}', now(), now()) RETURNING id")
        (customer,) = cursor.fetchone()
        cursor.execute("INSERT INTO customers_event (customer_id, name, timestamp, properties, message_id, received_at, "
                       "source) SELECT %s, 'x', t, '{}', CASE WHEN n %% 2 = 0 THEN 'id-' || n END, now(), 'api' "
                       "FROM generate_series(1, 6) n, LATERAL (SELECT timestamptz '2025-01-15' + n * interval '40 days') s(t)",
                       [customer])
        cursor.execute("SELECT array_agg(ROW(id, timestamp, message_id)::text ORDER BY id) FROM customers_event")
        (before,) = cursor.fetchone()
    with migrated_to(schema) as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'customers_event'::regclass")
        assert cursor.fetchone() == ("p",)
        cursor.execute("SELECT array_agg(ROW(id, timestamp, message_id)::text ORDER BY id) FROM customers_event")
        assert cursor.fetchone() == (before,)
        cursor.execute("SELECT count(DISTINCT tableoid) FROM customers_event")
        assert cursor.fetchone() == (6,)  # one month each
        cursor.execute("SELECT array_agg(message_id ORDER BY message_id) FROM customers_eventmessage")
        assert cursor.fetchone() == (["id-2", "id-4", "id-6"],)
        cursor.execute("INSERT INTO customers_event (customer_id, name, timestamp, properties, received_at, source) "
                       "VALUES (%s, 'y', now(), '{}', now(), 'api') RETURNING id", [customer])
        assert cursor.fetchone()[0] > 6  # the sequence went on from the copied ids
    with migrated_to(schema, "0025") as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'customers_event'::regclass")
        assert cursor.fetchone() == ("r",)
        cursor.execute("SELECT count(*) FROM customers_event")
        assert cursor.fetchone() == (7,)
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'event_message_id_unique' "
                       "AND schemaname = %s", [schema])
        assert "UNIQUE" in cursor.fetchone()[0]


def test_events_centuries_away_wait_in_the_default_partition(history):
    """The ingest accepts 1800–2200: a source with a broken clock must not give every month
    between a table of its own."""
    ingest_messages(messages=[track("login", datetime(1850, 3, 1, tzinfo=UTC), "old-clock"),
                              track("login", datetime(2150, 3, 1, tzinfo=UTC), "new-clock")],
                    source="api", now=NOW)
    done = partitions.upkeep(now=NOW)
    months = partitions.event_months()
    assert months[0] >= partitions.add_months(date(2026, 12, 1), -partitions.MONTHS_BACK)
    assert months[-1] == date(2027, 2, 1) and len(months) < 30
    assert where(Event.objects.get(message_id="old-clock").pk) == partitions.DEFAULT
    assert where(Event.objects.get(message_id="new-clock").pk) == partitions.DEFAULT
    assert "customers_event_y2024m11" in done.created  # a month inside the span does move
