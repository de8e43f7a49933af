"""The write path: identities, traits, events, dedupe and merges (real PostgreSQL)."""

from datetime import datetime, timedelta, timezone

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, CustomerIdentity, Event, EventDefinition, TraitDefinition

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
T = NOW - timedelta(hours=1)


def msg(type_="track", i=0, **kw) -> Message:
    return Message(type=type_, timestamp=kw.pop("timestamp", T), index=i, path=f"batch[{i}]", **kw)


def ingest(*messages: Message):
    return ingest_messages(messages=list(messages), source="test", now=NOW)


def test_a_track_creates_the_customer_and_registers_the_event(in_tenant):
    result = ingest(msg(user_id="u1", event="project_created", message_id="m1", properties={"plan": "pro", "seats": 3}))
    assert (result.accepted, result.duplicates, result.customers_created) == (1, 0, 1)
    customer = Customer.objects.get(external_id="u1")
    assert customer.last_seen_at == T
    assert Event.objects.get(message_id="m1").customer == customer
    definition = EventDefinition.objects.get(name="project_created")
    assert definition.volume == 1 and definition.properties == {"plan": "string", "seats": "number"}
    assert CustomerIdentity.objects.get(kind="user_id", value="u1").customer == customer


def test_retries_with_the_same_message_id_are_stored_once(in_tenant):
    ingest(msg(user_id="u1", event="login", message_id="same"))
    again = ingest(msg(user_id="u1", event="login", message_id="same"), msg(i=1, user_id="u1", event="login", message_id="same"))
    assert (again.accepted, again.duplicates) == (0, 2)
    assert Event.objects.filter(message_id="same").count() == 1
    assert EventDefinition.objects.get(name="login").volume == 1


def test_identify_sets_builtin_columns_and_registers_custom_traits(in_tenant):
    ingest(msg("identify", user_id="u2", traits={
        "email": "ada@example.test", "company_size": 40, "tech_stack": ["django", "react"],
        "signed_up_at": "2026-01-02T03:04:05Z", "favourite_colour": "teal", "nps_last": 9,
        "address": {"city_district": "Mitte"}}))
    c = Customer.objects.get(external_id="u2")
    assert (c.email, c.company_size, c.tech_stack) == ("ada@example.test", 40, ["django", "react"])
    assert c.signed_up_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert c.traits == {"favourite_colour": "teal", "nps_last": 9, "address.city_district": "Mitte"}
    assert TraitDefinition.objects.get(key="nps_last").type == "number"
    assert TraitDefinition.objects.get(key="favourite_colour").is_builtin is False


def test_a_trait_contradicting_its_type_refuses_that_item_only(in_tenant):
    ingest(msg("identify", user_id="u3", traits={"nps_last": 9}))
    result = ingest(msg("identify", user_id="u3", traits={"nps_last": "nine", "plan": "pro"}),
                    msg("track", i=1, user_id="u3", event="login"))
    assert [(p.path, p.code) for p in result.problems] == [("batch[0].traits.nps_last", "type_mismatch")]
    c = Customer.objects.get(external_id="u3")
    assert c.traits == {"nps_last": 9} and c.plan is None  # nothing of the bad item was written
    assert Event.objects.filter(customer=c, name="login").exists()  # the good item was


def test_null_clears_a_trait(in_tenant):
    ingest(msg("identify", user_id="u4", traits={"plan": "pro", "colour": "red"}))
    ingest(msg("identify", user_id="u4", traits={"plan": None, "colour": None}))
    c = Customer.objects.get(external_id="u4")
    assert c.plan is None and c.traits == {}


def test_identify_after_anonymous_activity_keeps_the_history(in_tenant):
    ingest(msg(anonymous_id="anon-1", event="page_seen"), msg("page", i=1, anonymous_id="anon-1"))
    anonymous = Customer.objects.get(external_id="anon:anon-1")
    ingest(msg("identify", user_id="u5", anonymous_id="anon-1", traits={"email": "u5@example.test"}))
    known = Customer.objects.get(external_id="u5")
    assert known.pk == anonymous.pk  # the anonymous profile became the known one
    assert set(Event.objects.filter(customer=known).values_list("name", flat=True)) == {"page_seen", "page_viewed"}


def test_two_profiles_of_one_person_are_merged(in_tenant):
    ingest(msg("identify", user_id="u6", traits={"email": "six@example.test"}),
           msg(i=1, user_id="u6", event="login"))
    ingest(msg(anonymous_id="anon-6", event="pricing_viewed"),
           msg("identify", i=1, anonymous_id="anon-6", traits={"plan": "pro", "email": "other@example.test"}))
    result = ingest(msg("alias", user_id="u6", previous_id="anon-6"))
    assert result.customers_merged == 1
    survivor = Customer.objects.get(external_id="u6")
    assert not Customer.objects.filter(external_id="anon:anon-6").exists()
    assert survivor.email == "six@example.test" and survivor.plan == "pro"  # own traits win, gaps filled
    assert set(Event.objects.filter(customer=survivor).values_list("name", flat=True)) == {"login", "pricing_viewed"}
    assert CustomerIdentity.objects.get(kind="anonymous_id", value="anon-6").customer == survivor


def test_an_item_without_any_id_is_reported_and_the_rest_stored(in_tenant):
    result = ingest(msg(event="orphan"), msg(i=1, user_id="u7", event="fine"))
    assert [(p.path, p.code) for p in result.problems] == [("batch[0].userId", "required")]
    assert result.accepted == 1 and Event.objects.filter(name="fine").exists()


def test_prepared_statements_follow_the_tenant_schema(in_tenant, other_tenant):
    """The lookup is prepared once per connection; after a switch to another workspace it
    reads and writes that workspace's tables."""
    from django.db import connection

    for _ in range(3):
        ingest(msg(user_id="same-id", event="login"))
    connection.set_tenant(other_tenant)
    result = ingest(msg(user_id="same-id", event="login"))
    assert result.customers_created == 1
    assert Customer.objects.get(external_id="same-id").events.count() == 1
    connection.set_tenant(in_tenant)
    assert Customer.objects.get(external_id="same-id").events.count() == 3


def test_an_older_event_leaves_last_seen_at_alone(in_tenant):
    ingest(msg(user_id="u-late", event="login", timestamp=T))
    ingest(msg(user_id="u-late", event="login", timestamp=T - timedelta(days=3)))
    ingest(msg(user_id="u-late", event="login", timestamp=T + timedelta(minutes=5)))
    assert Customer.objects.get(external_id="u-late").last_seen_at == T + timedelta(minutes=5)
    assert Customer.objects.get(external_id="u-late").events.count() == 3


def test_a_future_dated_event_is_stored_but_last_seen_at_stops_at_its_arrival(in_tenant):
    ingest(msg(user_id="u-future", event="login", timestamp=NOW + timedelta(days=30)))
    customer = Customer.objects.get(external_id="u-future")
    assert customer.last_seen_at == NOW  # received now: not seen in the future
    assert customer.events.get().timestamp == NOW + timedelta(days=30)
