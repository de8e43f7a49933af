"""The overlap page: heatmap and exclusive counts of the chosen segments, coded refusals."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test import Client

from customers.models import Customer
from segments import engine
from segments.models import Segment
from tests.conftest import host_of, make_member

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture
def three_lists(tenant):
    """a = {1,2,3,4}, b = {3,4,5}, c = {9}: a∩b = 2; exclusive a 2, b 1, c 1; union 6."""
    connection.set_tenant(tenant)
    people = {i: Customer.objects.create(external_id=f"o{i}") for i in (1, 2, 3, 4, 5, 9)}
    for key, members in (("a", [1, 2, 3, 4]), ("b", [3, 4, 5]), ("c", [9])):
        segment = Segment.objects.create(key=f"ov-{key}", name=f"List {key.upper()}", kind="static")
        engine.members_add(segment=segment, customer_ids=[people[i].pk for i in members], now=NOW)
    connection.set_schema_to_public()


def _client(tenant, role="viewer") -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, f"{role}-overlap@{tenant.slug}.test", role))
    return client


def test_the_page_shows_the_heatmap_and_exclusive_counts(tenant, three_lists):
    response = _client(tenant).get("/segments/-/overlap/?keys=ov-a&keys=ov-b,ov-c")
    body = response.content.decode()
    assert response.status_code == 200 and 'data-testid="overlap-heatmap"' in body
    assert "6 customers in any of them" in body
    table = body[body.index('data-testid="overlap-table"'):]
    assert [cell.strip() for cell in _cells(table)] == ["4", "2", "50.0%", "3", "1", "33.3%", "1", "1", "100.0%"]


def _cells(html: str) -> list[str]:
    import re

    return re.findall(r'<td class="text-right tabular-nums">([^<]*)</td>', html)


def test_one_segment_asks_for_more(tenant, three_lists):
    body = _client(tenant).get("/segments/-/overlap/?keys=ov-a").content.decode()
    assert "Tick two or more segments" in body


@pytest.mark.parametrize("query,message", [
    ("keys=ov-a,nope", "No segment “nope”"),
    ("keys=" + ",".join(f"k{i}" for i in range(11)), "No segment “k0”"),
])
def test_bad_choices_are_refused_with_a_message(tenant, three_lists, query, message):
    response = _client(tenant).get(f"/segments/-/overlap/?{query}")
    assert response.status_code == 400 and message in response.content.decode()


def test_more_than_ten_segments_are_refused(tenant):
    connection.set_tenant(tenant)
    for i in range(11):
        Segment.objects.create(key=f"many-{i}", name=f"Many {i}", kind="static")
    connection.set_schema_to_public()
    response = _client(tenant).get("/segments/-/overlap/?keys=" + ",".join(f"many-{i}" for i in range(11)))
    assert response.status_code == 400 and "at most 10" in response.content.decode()


def test_another_tenants_segments_are_unknown(tenant, other_tenant):
    connection.set_tenant(other_tenant)
    Segment.objects.create(key="beta-x", name="Beta X", kind="static")
    Segment.objects.create(key="beta-y", name="Beta Y", kind="static")
    connection.set_schema_to_public()
    response = _client(tenant).get("/segments/-/overlap/?keys=beta-x,beta-y")
    assert response.status_code == 400 and "Beta X" not in response.content.decode()
