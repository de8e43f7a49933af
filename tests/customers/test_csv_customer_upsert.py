"""The set-based customer upsert of the CSV import (customers/imports/customer_upsert.py):
identities, the registry, the "changes nothing" rule, the signal, and the race with a
writer that creates the customer meanwhile (real PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.imports import customer_upsert
from customers.imports import mapping as maps
from customers.imports.customer_upsert import upsert_customers
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, CustomerIdentity, TraitDefinition
from segments.rules.vocabulary import TraitType

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
PLAN = maps.Plan(maps.CUSTOMERS, [
    maps.Column(0, "id", "external_id", None),
    maps.Column(1, "plan", "trait:plan", TraitType.STRING),
    maps.Column(2, "seats", "trait:seats", TraitType.NUMBER),
], width=3)


def upsert(*rows: dict, plan: maps.Plan = PLAN):
    return upsert_customers(rows=[(i + 2, dict(values)) for i, values in enumerate(rows)], plan=plan, now=NOW)


def test_new_customers_get_their_values_identity_and_registered_traits(in_tenant):
    result = upsert({"external_id": "u1", "trait:plan": "pro", "trait:seats": 3}, {"external_id": "anon:a9"})
    assert (result.imported, result.unchanged, result.problems) == (2, 0, [])
    u1 = Customer.objects.get(external_id="u1")
    assert (u1.plan, u1.traits, u1.email, u1.tech_stack, u1.email_opt_in) == ("pro", {"seats": 3}, None, None, None)
    assert CustomerIdentity.objects.get(kind="user_id", value="u1").customer == u1
    anonymous = CustomerIdentity.objects.get(kind="anonymous_id", value="a9").customer
    assert anonymous.external_id == "anon:a9"
    assert TraitDefinition.objects.get(key="seats").type == "number"


def test_an_id_merged_into_another_customer_updates_the_survivor(in_tenant):
    """u2's profile was merged into u1's (alias): a row for u2 is about that person."""
    ingest_messages(messages=[Message(type="identify", timestamp=NOW, user_id="u1", traits={"plan": "free"}),
                              Message(type="identify", timestamp=NOW, user_id="u2", index=1)], source="test", now=NOW)
    ingest_messages(messages=[Message(type="alias", timestamp=NOW, user_id="u1", previous_id="u2")],
                    source="test", now=NOW)
    result = upsert({"external_id": "u2", "trait:plan": "pro"})
    assert result.imported == 1
    assert list(Customer.objects.values_list("external_id", "plan")) == [("u1", "pro")]


def test_rows_of_one_person_merge_in_file_order_and_an_empty_cell_keeps_the_value(in_tenant):
    upsert({"external_id": "u3", "trait:plan": "free", "trait:seats": 1},
           {"external_id": "u3", "trait:plan": "pro"},
           {"external_id": "u3", "trait:seats": 5})
    customer = Customer.objects.get(external_id="u3")
    assert (customer.plan, customer.traits) == ("pro", {"seats": 5})


def test_unchanged_rows_write_nothing_and_announce_nothing(in_tenant, touched):
    upsert({"external_id": "u4", "trait:plan": "pro", "trait:seats": 2})
    before = Customer.objects.get(external_id="u4").updated_at
    touched.clear()
    later = datetime(2026, 11, 24, tzinfo=timezone.utc)
    result = upsert_customers(rows=[(2, {"external_id": "u4", "trait:plan": "pro", "trait:seats": 2})], plan=PLAN,
                              now=later)
    assert (result.imported, result.unchanged) == (0, 1)
    assert Customer.objects.get(external_id="u4").updated_at == before


def test_a_change_is_announced_for_the_changed_customer_only(in_tenant, touched, django_capture_on_commit_callbacks):
    upsert({"external_id": "u5", "trait:plan": "free"}, {"external_id": "u6", "trait:plan": "free"})
    with django_capture_on_commit_callbacks(execute=True):
        result = upsert({"external_id": "u5", "trait:plan": "pro"}, {"external_id": "u6", "trait:plan": "free"})
    assert (result.imported, result.unchanged) == (1, 1)
    assert [payload["customer_ids"] for payload in touched] == [[Customer.objects.get(external_id="u5").pk]]
    assert touched[0]["traits"] == {"plan": [Customer.objects.get(external_id="u5").pk]}


def test_a_value_contradicting_a_type_registered_meanwhile_refuses_its_row(in_tenant):
    """The mapping read `seats` as a number; since then it was registered as text."""
    TraitDefinition.objects.create(key="seats", type="string", category="behavioral")
    result = upsert({"external_id": "u7", "trait:plan": "pro", "trait:seats": 3}, {"external_id": "u8"})
    assert [(row, column, code) for row, column, code, _ in result.problems] == [(2, "seats", "type_mismatch")]
    assert result.imported == 1
    assert not Customer.objects.filter(external_id="u7").exists()  # nothing of the refused row
    assert Customer.objects.filter(external_id="u8").exists()


def test_a_customer_created_by_another_writer_meanwhile_is_updated_not_duplicated(in_tenant, monkeypatch):
    """The lookup saw no u9; by the insert, tracking had created it: the row updates it."""
    ingest_messages(messages=[Message(type="track", timestamp=NOW, user_id="u9", event="login")],
                    source="test", now=NOW)
    monkeypatch.setattr(customer_upsert, "_find", lambda external_ids: {})
    result = upsert({"external_id": "u9", "trait:plan": "pro"})
    assert result.imported == 1
    assert list(Customer.objects.filter(external_id="u9").values_list("plan", flat=True)) == ["pro"]
    assert CustomerIdentity.objects.filter(kind="user_id", value="u9").count() == 1


def test_builtin_columns_of_every_type_are_written(in_tenant):
    plan = maps.Plan(maps.CUSTOMERS, [maps.Column(0, "id", "external_id", None)] + [
        maps.Column(i + 1, key, f"trait:{key}", TraitType.STRING) for i, key in enumerate(
            ["birth_date", "signed_up_at", "company_size", "annual_revenue", "email_opt_in", "tech_stack"])], width=7)
    upsert({"external_id": "b1", "trait:birth_date": "1990-05-06T00:00:00+00:00",
            "trait:signed_up_at": "2026-01-02T03:04:05+00:00", "trait:company_size": 40.0,
            "trait:annual_revenue": 1234.5, "trait:email_opt_in": True, "trait:tech_stack": ["django", "a,b"]},
           plan=plan)
    customer = Customer.objects.get(external_id="b1")
    assert customer.birth_date.isoformat() == "1990-05-06"
    assert customer.signed_up_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert (customer.company_size, float(customer.annual_revenue), customer.email_opt_in) == (40, 1234.5, True)
    assert customer.tech_stack == ["django", "a,b"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(maps._PLAIN_EMAIL, fullmatch=True),
                 st.from_regex(r"[a-z.%+_-]{1,10}@[a-z0-9.-]{1,12}\.[a-z]{2,4}", fullmatch=True)))
def test_the_email_shortcut_accepts_nothing_django_refuses(address):
    """Addresses the plain-shape regex lets past validate_email are ones it accepts."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    if maps._PLAIN_EMAIL.match(address) and len(address) <= 254:
        try:
            validate_email(address)
        except ValidationError:
            pytest.fail(f"{address!r} passes the shortcut but not validate_email")


def test_a_list_trait_that_shrinks_is_a_change(in_tenant):
    """["a", "b"] → ["a"] is applied (containment would call it unchanged)."""
    plan = maps.Plan(maps.CUSTOMERS, [maps.Column(0, "id", "external_id", None),
                                      maps.Column(1, "tags", "trait:tags", TraitType.LIST)], width=2)
    upsert({"external_id": "l1", "trait:tags": ["a", "b"]}, plan=plan)
    result = upsert({"external_id": "l1", "trait:tags": ["a"]}, plan=plan)
    assert (result.imported, result.unchanged) == (1, 0)
    assert Customer.objects.get(external_id="l1").traits == {"tags": ["a"]}
    again = upsert({"external_id": "l1", "trait:tags": ["a"]}, plan=plan)
    assert (again.imported, again.unchanged) == (0, 1)


def test_each_trait_is_announced_for_the_customers_whose_rows_carried_it(in_tenant, touched,
                                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upsert({"external_id": "u7", "trait:plan": "pro"}, {"external_id": "u8", "trait:seats": 3})
    u7, u8 = (Customer.objects.get(external_id=key).pk for key in ("u7", "u8"))
    [payload] = touched
    assert payload["customer_ids"] == sorted([u7, u8])
    assert payload["traits"]["plan"] == [u7] and payload["traits"]["seats"] == [u8]
