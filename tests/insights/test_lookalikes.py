"""Lookalikes: seeded with some of the planted enterprise buyers, the ranking finds the
others well above chance (precision of the top N on the held-out seed ≥ 3× the base
rate); a static segment of the top N is made from it; bad requests are coded."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from common.errors import DomainError, Forbidden
from customers.models import GeneratorTruth
from demo.generator import generate
from insights.models import LookalikeScore
from insights.services.lookalikes import lookalike_run_execute, lookalike_run_request, lookalike_segment_create
from segments.selectors.members import segment_members
from segments.services import segment_create, static_members_add
from tests.conftest import make_member

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture
def actors(tenant):
    analyst = make_member(tenant, "analyst-look@alpha.test", "analyst").memberships.get(tenant=tenant)
    marketer = make_member(tenant, "marketer-look@alpha.test", "marketer").memberships.get(tenant=tenant)
    return analyst, marketer


def test_lookalikes_of_a_seed_find_its_kind_and_become_a_segment(in_tenant, actors):
    analyst, marketer = actors
    generate(customers=1500, events=30_000, now=NOW, seed=9)
    buyers = sorted(GeneratorTruth.objects.filter(persona="enterprise_buyer").values_list("customer_id", flat=True))
    seed, rest = buyers[::2], set(buyers[1::2])
    segment, _ = segment_create(actor=marketer, key="big-accounts", name="Big accounts", kind="static", now=NOW)
    static_members_add(actor=marketer, segment=segment, customer_ids=seed, now=NOW)

    run = lookalike_run_request(actor=analyst, segment="big-accounts", now=NOW)
    run = lookalike_run_execute(run_id=run.pk, clock=lambda: NOW)
    assert run.status == "succeeded", run.error
    assert run.seed_size == len(seed) and run.metrics["lift"] >= 3
    assert run.metrics["precision_at_n"] >= 3 * run.metrics["base_rate"]
    assert LookalikeScore.objects.filter(run=run).count() == 1500 - len(seed)
    # The other half of the planted buyers rank near the top.
    top = list(LookalikeScore.objects.filter(run=run).order_by("-score").values_list("customer_id", flat=True)[:len(rest)])
    assert len(rest & set(top)) / len(rest) >= 0.6

    made = lookalike_segment_create(actor=marketer, run=run, key="like-big", name="Like big accounts", top=50, now=NOW)
    members = set(segment_members(segment=made).values_list("id", flat=True))
    assert len(members) == 50 and not members & set(seed)
    assert "held-out precision" in made.description


def test_bad_lookalike_requests_are_coded(in_tenant, actors):
    analyst, marketer = actors
    with pytest.raises(DomainError) as refused:
        lookalike_run_request(actor=analyst, segment="ghosts", now=NOW, seed=-2)
    assert {(p.path, p.code) for p in refused.value.problems} == {("segment", "unknown_segment"), ("seed", "out_of_range")}
    with pytest.raises(Forbidden):
        lookalike_run_request(actor=marketer, segment="ghosts", now=NOW)


def test_a_tiny_seed_gets_a_message(in_tenant, actors):
    analyst, marketer = actors
    generate(customers=300, events=6_000, now=NOW, seed=1)
    segment, _ = segment_create(actor=marketer, key="few", name="Few", kind="static", now=NOW)
    static_members_add(actor=marketer, segment=segment, customer_ids=list(
        GeneratorTruth.objects.values_list("customer_id", flat=True)[:5]), now=NOW)
    run = lookalike_run_execute(run_id=lookalike_run_request(actor=analyst, segment="few", now=NOW).pk,
                                clock=lambda: NOW)
    assert run.status == "failed" and run.error.startswith("Lookalikes need a seed of at least 20 customers")
    with pytest.raises(DomainError) as refused:
        lookalike_segment_create(actor=marketer, run=run, key="x", name="X", top=10, now=NOW)
    assert [p.code for p in refused.value.problems] == ["not_finished"]
