"""The live count's estimate: a fixed hash-sample of customers scaled up with a 95% margin,
checked against counts written here by hand; the API's and the builder's two states."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from customers.models import Customer
from segments.selectors import preview as preview_module
from segments.selectors.preview import ESTIMATE_BUCKETS, estimate_of, preview, sample_buckets
from tests.conftest import session
from tests.segments.test_selectors import SYSTEM, plan_is

NOW = datetime(2026, 6, 10, 12, tzinfo=timezone.utc)
POPULATION = 2_000
TARGET = 300  # sampled customers asked for in these tests: ~15% of POPULATION


def one(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def make_crowd() -> None:
    """POPULATION customers, every third on pro; analysed, so the planner (and the sample's
    size, read from pg_class) knows how many there are."""
    Customer.objects.bulk_create(Customer(external_id=f"c{i:05}", plan="pro" if i % 3 == 0 else "free")
                                 for i in range(POPULATION))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")


@pytest.fixture
def crowd(in_tenant, monkeypatch):
    make_crowd()
    monkeypatch.setattr(preview_module, "ESTIMATE_TARGET", TARGET)
    return in_tenant


@pytest.fixture
def crowded(tenant, monkeypatch):
    """The crowd in `tenant`, committed to by requests through the test client."""
    connection.set_tenant(tenant)
    make_crowd()
    connection.set_schema_to_public()
    monkeypatch.setattr(preview_module, "ESTIMATE_TARGET", TARGET)
    return tenant


def test_the_estimate_reads_the_hash_sample_and_scales_it(crowd):
    buckets = sample_buckets(POPULATION, TARGET)
    assert buckets == math.ceil(ESTIMATE_BUCKETS * TARGET / POPULATION)
    sampled, matched = one("SELECT count(*), count(*) FILTER (WHERE plan = 'pro') FROM customers_customer "
                           "WHERE (hashint8(id) & 1023) < %s", [buckets])
    exact = Customer.objects.filter(plan="pro").count()
    result = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, accuracy="estimate")
    estimate = result.estimate
    assert not result.exact and result.count == estimate.count
    assert (estimate.sampled, estimate.matched, estimate.population) == (sampled, matched, POPULATION)
    assert estimate.count == round(matched / sampled * POPULATION)
    assert 0 < estimate.margin < exact / 2
    assert abs(estimate.count - exact) <= 2 * estimate.margin  # ~4 standard errors: never flaky
    in_sample = {row[0] for row in Customer.objects.filter(plan="pro").values_list("id").iterator()
                 if one("SELECT (hashint8(%s::bigint) & 1023) < %s", [row[0], buckets])[0]}
    assert result.sample_ids and set(result.sample_ids) <= in_sample
    # The same customers every call: an estimate moves only when the rule or the data does.
    assert preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, accuracy="estimate").estimate == estimate


def test_both_gives_the_estimate_beside_the_exact_count(crowd):
    result = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, accuracy="both")
    assert result.exact and result.count == Customer.objects.filter(plan="pro").count()
    assert result.estimate is not None and not result.estimate.exact
    assert preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW).estimate is None  # exact alone


def test_the_estimates_impact_is_scaled_from_the_sample(crowd):
    from segments import engine
    from segments.models import Segment

    segment = Segment.objects.create(key="pros", name="Pros", definition=plan_is("pro"), definition_version=1)
    engine.evaluate(segment_id=segment.pk, now=NOW, trigger="manual", clock=lambda: NOW)
    segment.refresh_from_db()
    result = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, segment=segment, accuracy="estimate")
    members = Customer.objects.filter(plan="pro").count()
    # Every sampled match is a member: nobody is estimated to enter; the members the scaled
    # count leaves out are the estimate's exits (its error, within the margin).
    assert (result.would_enter, result.current_size) == (0, members)
    assert result.would_exit == max(members - result.count, 0) <= result.estimate.margin
    free = preview(actor=SYSTEM, definition=plan_is("free"), now=NOW, segment=segment, accuracy="estimate")
    assert free.would_exit == free.current_size and free.would_enter == free.count


def test_a_small_workspace_is_sampled_whole_and_its_estimate_is_exact(in_tenant):
    Customer.objects.bulk_create(Customer(external_id=f"s{i}", plan="pro" if i < 7 else "free") for i in range(20))
    result = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, accuracy="estimate")
    assert result.exact and result.count == 7
    assert (result.estimate.count, result.estimate.margin, result.estimate.population) == (7, 0, 20)


def test_the_sample_is_read_through_its_expression_index(crowd):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + preview_module._SAMPLE_IDS_SQL.format(mask=ESTIMATE_BUCKETS - 1, buckets=11))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "customer_sample_idx" in plan, plan


@given(matched=st.integers(0, 10_000), extra=st.integers(0, 10_000), rest=st.integers(0, 10**7))
def test_the_margin_is_a_sane_interval(matched, extra, rest):
    sampled = matched + extra
    population = sampled + rest
    estimate = estimate_of(matched=matched, sampled=sampled, population=population)
    assert 0 <= estimate.count <= population and estimate.margin >= 0
    if sampled == 0 or rest == 0:
        assert estimate.margin == 0 or sampled == 0
    else:
        assert estimate.margin > 0  # also when nobody, or everybody, in the sample matches
        assert estimate.margin <= population
        bigger = estimate_of(matched=matched * 4, sampled=sampled * 4, population=population + 3 * sampled)
        assert bigger.margin / bigger.population <= estimate.margin / estimate.population + 1e-9


# ------------------------------------------------------------------ API and the builder


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_the_api_preview_returns_estimate_margin_and_exact(crowded):
    client = session(crowded, "viewer")
    quick = post(client, "/api/v1/segments/preview/", {"definition": plan_is("pro"), "accuracy": "estimate"}).json()
    assert quick["exact"] is None and quick["count"] == quick["estimate"] and quick["margin"] > 0
    assert quick["population"] == POPULATION and 0 < quick["sampled"] < POPULATION
    full = post(client, "/api/v1/segments/preview/", {"definition": plan_is("pro")}).json()
    assert full["exact"] == full["count"] == (POPULATION + 2) // 3
    assert (full["estimate"], full["margin"]) == (quick["estimate"], quick["margin"])
    bad = post(client, "/api/v1/segments/preview/", {"definition": plan_is("pro"), "accuracy": "roughly"})
    assert bad.status_code == 400
    assert {(e["path"], e["code"]) for e in bad.json()["errors"]} == {("accuracy", "invalid_choice")}


def test_the_builder_shows_an_estimate_then_the_exact_count(crowded):
    client = session(crowded, "marketer")
    estimate = post(client, "/segments/-/preview/", {"definition": plan_is("pro"), "accuracy": "estimate"})
    html = estimate.content.decode()
    assert estimate.status_code == 200 and 'data-exact-pending="true"' in html and 'data-testid="preview-margin"' in html
    assert 'data-code="too_small"' not in html  # hygiene waits for the exact members
    exact = post(client, "/segments/-/preview/", {"definition": plan_is("pro"), "accuracy": "exact"}).content.decode()
    assert "data-exact-pending" not in exact and f'data-testid="preview-count">{(POPULATION + 2) // 3:,}<' in exact
    bad = post(client, "/segments/-/preview/", {"definition": plan_is("pro"), "accuracy": 3})
    assert bad.status_code == 400 and "accuracy" in bad.content.decode()
