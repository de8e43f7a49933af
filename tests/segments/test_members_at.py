"""The segment page reads the membership history: the members at the end of a chosen day
(UTC) with when each left since, and who entered or exited between two days; a bad or
future day is a coded 400."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection

from customers.models import Customer
from segments.services import segment_create, static_members_add, static_members_remove
from tests.conftest import membership_of
from tests.customers.customer_data import client_as

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture
def history(tenant):
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    early, late, gone = (Customer.objects.create(external_id=name, email=f"{name}@example.test", name=name.title())
                         for name in ("early-bird", "late-comer", "gone-away"))
    vip, _ = segment_create(actor=admin, key="vip-history", name="VIPs", kind="static", now=NOW - 30 * DAY)
    static_members_add(actor=admin, segment=vip, customer_ids=[early.pk, gone.pk], now=NOW - 20 * DAY)
    static_members_add(actor=admin, segment=vip, customer_ids=[late.pk], now=NOW - 5 * DAY)
    static_members_remove(actor=admin, segment=vip, customer_ids=[gone.pk], now=NOW - 10 * DAY)
    connection.set_schema_to_public()
    with time_machine.travel(NOW, tick=False):
        yield vip


def rows(html: str) -> int:
    return html.count('data-testid="member-row"')


def test_members_at_the_end_of_a_day(tenant, history):
    client = client_as(tenant, "marketer")
    day = (NOW - 15 * DAY).date().isoformat()  # early and gone were members; late was not yet
    html = client.get(f"/segments/vip-history/members/?at={day}").content.decode()
    assert rows(html) == 2 and "early-bird" in html and "gone-away" in html and "late-comer" not in html
    assert 'data-testid="member-until"' in html  # gone left 10 days ago: shown
    assert rows(client.get("/segments/vip-history/members/").content.decode()) == 2  # now: early, late
    before = (NOW - 25 * DAY).date().isoformat()
    html = client.get(f"/segments/vip-history/members/?at={before}").content.decode()
    assert rows(html) == 0 and "Nobody was a member at the end of" in html
    # The search and the pages keep the day.
    html = client.get(f"/segments/vip-history/members/?at={day}&q=go").content.decode()
    assert rows(html) == 1 and "gone-away" in html


@pytest.mark.parametrize("value, code", [("yesterday", "invalid_date"), ("2026-13-01", "invalid_date"),
                                         ("2026-12-24", "in_future")])
def test_a_bad_or_future_day_is_a_coded_400(tenant, history, value, code):
    response = client_as(tenant, "marketer").get(f"/segments/vip-history/members/?at={value}")
    assert response.status_code == 400
    assert f'data-code="{code}"' in response.content.decode()


def test_the_page_offers_the_day_picker(tenant, history):
    html = client_as(tenant, "viewer").get("/segments/vip-history/").content.decode()
    assert 'data-testid="members-at"' in html


# ---------------------------------------------------------------------- entered and exited


def test_who_entered_and_exited_between_two_days(tenant, history):
    client = client_as(tenant, "marketer")
    first, last = (NOW - 21 * DAY).date().isoformat(), (NOW - 9 * DAY).date().isoformat()
    html = client.get(f"/segments/vip-history/changes/?from={first}&to={last}").content.decode()
    # early-bird and gone-away entered 20 days ago, gone-away exited 10 days ago; late-comer came later.
    assert html.count('data-testid="change-row"') == 3 and "late-comer" not in html
    assert "2 entered and 1 exited" in html
    week = client.get("/segments/vip-history/changes/").content.decode()  # the last seven days
    assert week.count('data-testid="change-row"') == 1 and "late-comer" in week


def test_changes_mask_names_for_a_viewer(tenant, history):
    first = (NOW - 21 * DAY).date().isoformat()
    html = client_as(tenant, "viewer").get(f"/segments/vip-history/changes/?from={first}").content.decode()
    assert "gone-away@example.test" not in html and "gone-away" in html  # the external id stays


@pytest.mark.parametrize("query, code", [("from=soon", "invalid_date"), ("to=2026-02-30", "invalid_date"),
                                         ("from=2026-11-20&to=2026-11-01", "invalid_range")])
def test_bad_days_are_coded_400s(tenant, history, query, code):
    response = client_as(tenant, "marketer").get(f"/segments/vip-history/changes/?{query}")
    assert response.status_code == 400 and f'data-code="{code}"' in response.content.decode()
