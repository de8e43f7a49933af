"""STP targeting: each measure worked out by hand, weights and the overlap penalty changing
the ranking, targets with positioning saved as audited versions, coded bad input, pages, API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from campaigns.models import TargetingBoard
from campaigns.plays.services import play_create
from campaigns.targeting import board_current, board_save, targeting_rows
from common.errors import DomainError, Forbidden
from customers.feedback import ConsentChangeIn, consents_record
from customers.models import Customer, CustomerMetrics, MetricsSettings
from segments.services import segment_create, static_members_add
from tests.conftest import make_member, session

WEIGHTS = {"size": 1.0, "value": 2.0, "growth": 1.0, "reachability": 1.0, "engagement": 1.0, "overlap": 1.0}


@pytest.fixture
def market(in_tenant, tenant):
    now = timezone.now()
    MetricsSettings.objects.create(revenue_event="purchase", revenue_property="amount")
    admin = make_member(tenant, "stp-admin@alpha.test", "admin").memberships.get(tenant=tenant)
    people = {name: Customer.objects.create(external_id=name, email=f"{name}@example.test" if name == "c" else None)
              for name in "abcd"}
    people["a"].events.create(name="purchase", timestamp=now - timedelta(days=5), properties={"amount": 300})
    for name, score in (("a", 80), ("b", 20), ("c", 50)):
        CustomerMetrics.objects.create(customer=people[name], computed_at=now, engagement_score=score)
    consents_record(changes=[ConsentChangeIn(people["c"].pk, "email", True, now), ConsentChangeIn(people["d"].pk, "ads",
                                                                                                   True, now),
                             ConsentChangeIn(people["b"].pk, "email", False, now)])
    made = {}
    for key, members, days in (("big", "abc", 40), ("rich", "a", 10), ("reach", "cd", 40)):
        made[key], _ = segment_create(actor=admin, key=key, name=key.title(), kind="static", now=now - timedelta(days=60))
        static_members_add(actor=admin, segment=made[key], customer_ids=[people[n].pk for n in members],
                           now=now - timedelta(days=days))
    return {"admin": admin, "now": now, **made}


def test_each_measure_and_the_ranking_by_hand(market):
    rows = {r.key: r for r in targeting_rows(weights=WEIGHTS, targets=[], now=market["now"])}
    big, rich, reach = rows["big"], rows["rich"], rows["reach"]
    assert (big.size, big.arpu, big.growth, big.reachability, big.engagement) == (3, 100.0, 0.0, 0.3333, 50.0)
    assert (rich.arpu, rich.growth, rich.reachability, rich.engagement) == (300.0, None, 0.0, 80.0)
    assert (reach.reachability, reach.engagement) == (1.0, 50.0)
    assert big.parts == {"size": 1.0, "value": 0.3333, "growth": 0.0, "reachability": 0.3333, "engagement": 0.625,
                         "overlap": 0.0}
    assert [r.key for r in sorted(rows.values(), key=lambda r: r.rank)] == ["rich", "big", "reach"]
    assert rich.score == pytest.approx(0.3333 + 2 + 1, abs=1e-3)


def test_an_email_consent_without_an_address_does_not_reach_anyone(market):
    Customer.objects.filter(external_id="c").update(email=None)
    rows = {r.key: r for r in targeting_rows(weights=WEIGHTS, targets=[], now=market["now"] + timedelta(minutes=1))}
    assert rows["big"].reachability == 0.0 and rows["reach"].reachability == 0.5  # d's ads consent still counts


def test_weights_and_the_overlap_with_targets_change_the_ranking(market):
    reach_first = targeting_rows(weights={**WEIGHTS, "value": 0, "reachability": 5}, targets=[], now=market["now"])
    assert reach_first[0].key == "reach"
    rows = {r.key: r for r in targeting_rows(weights=WEIGHTS, targets=[{"segment": "rich"}], now=market["now"])}
    assert rows["big"].overlap == 0.3333 and rows["reach"].overlap == 0.0 and rows["rich"].overlap == 0.0
    assert rows["big"].score == pytest.approx(2.6249 - 0.3333, abs=1e-3)
    assert rows["rich"].target == {"segment": "rich"}


def test_a_saved_board_is_a_new_audited_version_and_targets_link_to_plays(market):
    admin = market["admin"]
    first = board_save(actor=admin, weights={"value": 3}, targets=[
        {"segment": "rich", "value_proposition": "Save time", "message": "Upgrade", "channel": "email"}],
        note="Q1", now=market["now"])
    second = board_save(actor=admin, weights=None, targets=[], now=market["now"])
    assert (first.version, second.version) == (1, 2) and board_current() == second
    assert first.weights["value"] == 3.0 and first.weights["size"] == 1.0
    assert AuditEvent.objects.filter(action="targeting.board_saved").count() == 2
    play_create(actor=admin, name="Rich upsell", segment_id=market["rich"].pk, tactic_type="email", kpi="conversion_rate")
    rows = {r.key: r for r in targeting_rows(weights=first.weights, targets=first.targets, now=market["now"])}
    assert rows["rich"].target["value_proposition"] == "Save time"
    assert [p["name"] for p in rows["rich"].plays] == ["Rich upsell"]


@pytest.mark.parametrize("weights, targets, path, code", [
    ({"value": 9}, [], "weights.value", "out_of_range"),
    ({"value": True}, [], "weights.value", "out_of_range"),
    ({"colour": 1}, [], "weights.colour", "unknown_field"),
    ([], [], "weights", "invalid_type"),
    (None, "rich", "targets", "invalid_type"),
    (None, [{"segment": "ghost"}], "targets[0].segment", "unknown_segment"),
    (None, [{"segment": "rich"}, {"segment": "rich"}], "targets[1].segment", "duplicate"),
    (None, [{"segment": "rich", "channel": "fax"}], "targets[0].channel", "invalid_choice"),
    (None, [{"segment": "rich", "message": "x" * 1001}], "targets[0].message", "invalid_value"),
    (None, [{"segment": "rich", "tone": "warm"}], "targets[0].tone", "unknown_field"),
    (None, [{"segment": "rich", "message": "a\x00"}], "targets[0].message", "null_characters_not_allowed"),
])
def test_bad_boards_are_coded_at_their_path_and_store_nothing(market, weights, targets, path, code):
    with pytest.raises(DomainError) as raised:
        board_save(actor=market["admin"], weights=weights, targets=targets, now=market["now"])
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]
    assert not TargetingBoard.objects.exists()


def test_only_segment_editors_save_the_board(market, tenant):
    viewer = make_member(tenant, "stp-viewer@alpha.test", "viewer").memberships.get(tenant=tenant)
    with pytest.raises(Forbidden):
        board_save(actor=viewer, weights=None, targets=[], now=market["now"])


def test_the_page_and_api(market, tenant, other_tenant):
    import json

    connection.set_schema_to_public()
    marketer = session(tenant, "marketer")
    page = marketer.get("/targeting/")
    assert page.status_code == 200 and b'data-testid="targeting-table"' in page.content
    saved = marketer.post("/targeting/save/", {"weights": json.dumps(WEIGHTS), "note": "First", "targets": json.dumps(
        [{"segment": "rich", "value_proposition": "Save time", "message": "Upgrade", "channel": "email"}])})
    assert saved.status_code == 302
    bad = marketer.post("/targeting/save/", {"weights": json.dumps({"value": 9}), "targets": "[]"})
    assert bad.status_code == 400 and b'data-code="out_of_range"' in bad.content
    body = marketer.get("/api/v1/targeting/").json()
    assert body["board"]["version"] == 1 and body["rows"][0]["key"] in {"rich", "big", "reach"}
    assert next(r for r in body["rows"] if r["key"] == "rich")["target"]["message"] == "Upgrade"
    made = marketer.post("/api/v1/targeting/", {"weights": {"size": 2}, "targets": []}, content_type="application/json")
    assert made.status_code == 201 and made.json()["version"] == 2
    assert [v["version"] for v in marketer.get("/api/v1/targeting/versions/").json()["results"]] == [2, 1]
    viewer = session(tenant, "viewer")
    assert viewer.get("/targeting/").status_code == 200
    assert viewer.post("/api/v1/targeting/", {"weights": {}, "targets": []},
                       content_type="application/json").status_code == 403
    stranger = session(other_tenant, "admin")
    assert stranger.get("/api/v1/targeting/").json()["board"] is None
