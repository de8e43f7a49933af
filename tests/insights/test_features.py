"""The feature catalogue and its extraction: counts are true zeros, shares and scores of
customers without data are missing (NaN), time of week reads the local clock, personal
traits never become features, and a past `now` sees only what had happened by then."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from customers.models import Consent, Customer, EventDefinition, Survey, SurveyResponse, TraitDefinition
from insights.features import catalogue, extract_all

NOW = datetime(2026, 7, 6, 12, tzinfo=timezone.utc)  # a Monday
DAY = timedelta(days=1)


@pytest.fixture
def people(in_tenant):
    EventDefinition.objects.create(name="login", first_seen_at=NOW, last_seen_at=NOW, volume=100)
    EventDefinition.objects.create(name="purchase", first_seen_at=NOW, last_seen_at=NOW, volume=10)
    TraitDefinition.objects.create(key="values_priority", type="string", category="psychographic")
    TraitDefinition.objects.create(key="seats", type="number", category="value")
    TraitDefinition.objects.create(key="salary", type="number", category="value", is_pii=True)
    # Saturday 2026-07-04 23:30 UTC is Sunday 08:30 in Tokyo and Saturday 19:30 in New York.
    saturday_night = datetime(2026, 7, 4, 23, 30, tzinfo=timezone.utc)
    busy = Customer.objects.create(external_id="busy", plan="pro", timezone="Asia/Tokyo", tech_stack=["react"],
                                   signed_up_at=NOW - 100 * DAY, traits={"values_priority": "speed", "seats": 3,
                                                                         "salary": 90_000})
    busy.events.create(name="login", timestamp=saturday_night, properties={})
    busy.events.create(name="login", timestamp=NOW - 40 * DAY, properties={})
    busy.events.create(name="purchase", timestamp=NOW - 2 * DAY, properties={"amount": 50})
    busy.events.create(name="purchase", timestamp=NOW - 200 * DAY, properties={"amount": 20})
    busy.events.create(name="login", timestamp=NOW + DAY, properties={})  # after `now`: unseen
    quiet = Customer.objects.create(external_id="quiet", plan=None, traits={"seats": "many"})
    nps = Survey.objects.get(key="nps")
    SurveyResponse.objects.create(customer=busy, survey=nps, score=9, responded_at=NOW - 5 * DAY)
    SurveyResponse.objects.create(customer=busy, survey=nps, score=4, responded_at=NOW - 50 * DAY)
    Consent.objects.create(customer=busy, channel="email", granted=True, changed_at=NOW)
    Consent.objects.create(customer=quiet, channel="email", granted=False, changed_at=NOW)
    return busy, quiet


def rows(features, now=NOW):
    blocks = list(extract_all(features, now=now))
    ids = np.concatenate([b.ids for b in blocks])
    values = np.vstack([b.values for b in blocks])
    names = [f.name for f in features]
    return {int(i): dict(zip(names, v)) for i, v in zip(ids, values)}


def test_the_catalogue_names_its_sources_and_leaves_personal_traits_out(people):
    features = {f.name: f for f in catalogue()}
    assert {"events_30d.login", "events_90d.purchase", "share.weekend", "share.evening", "survey.nps",
            "consent.email", "trait.plan=pro", "trait.values_priority=speed", "trait.seats", "tech.react"} <= set(features)
    assert not any("salary" in name for name in features)
    assert features["share.weekend"].missing and not features["events_30d"].missing
    assert features["share.weekend"].rule["when"] == {"days": [6, 7]}
    assert all(f.source and f.description for f in features.values())


def test_extraction_as_of_now(people):
    busy, quiet = people
    table = rows(catalogue())
    b, q = table[busy.pk], table[quiet.pk]
    assert (b["events_7d"], b["events_30d"], b["events_90d"]) == (2, 2, 3)
    assert b["events_30d.login"] == 1 and b["events_90d.login"] == 2 and b["events_90d.purchase"] == 1
    assert b["revenue_90d"] == 50 and b["revenue_total"] == 70 and b["orders_90d"] == 1
    assert b["days_since_last_seen"] == pytest.approx(36.5 / 24)  # Saturday 23:30 to Monday 12:00
    assert b["tenure_days"] == pytest.approx(100)
    # Of the three events of the last 90 days, Tokyo saw one on Sunday morning, one on a
    # Wednesday and one on Saturday (the purchase on Saturday 12:00 UTC = 21:00 Tokyo).
    assert b["share.sunday"] == pytest.approx(1 / 3) and b["share.weekend"] == pytest.approx(2 / 3)
    assert b["share.morning"] == pytest.approx(1 / 3)
    assert b["survey.nps"] == 9 and np.isnan(b["survey.csat"])
    assert b["consent.email"] == 1 and q["consent.email"] == 0 and b["consent.sms"] == 0
    assert b["trait.plan=pro"] == 1 and b["trait.values_priority=speed"] == 1 and b["trait.seats"] == 3
    assert b["tech.react"] == 1
    # The quiet customer: zero counts, missing shares and recency, a seats value of the wrong type missing.
    assert q["events_90d"] == 0 and q["events_30d.login"] == 0 and q["revenue_total"] == 0
    assert np.isnan(q["share.weekend"]) and np.isnan(q["days_since_last_seen"]) and np.isnan(q["tenure_days"])
    assert np.isnan(q["trait.seats"]) and q["trait.plan=pro"] == 0


def test_a_past_now_sees_only_what_had_happened(people):
    busy, _ = people
    past = rows(catalogue(), now=NOW - 30 * DAY)[busy.pk]
    assert past["events_90d"] == 1  # the login 40 days before NOW
    assert past["revenue_total"] == 20 and past["survey.nps"] == 4


def test_a_listed_subset_reads_only_its_customers_and_the_same_values(people):
    busy, quiet = people
    extra = [Customer.objects.create(external_id=f"extra-{i}", plan="free") for i in range(5)]
    features = catalogue()
    everyone = rows(features)
    blocks = list(extract_all(features, now=NOW, customer_ids=np.array([busy.pk, extra[2].pk])))
    listed = {int(i): dict(zip([f.name for f in features], v))
              for b in blocks for i, v in zip(b.ids, b.values)}
    assert sorted(listed) == sorted([busy.pk, extra[2].pk])
    for customer_id, values in listed.items():
        assert values.keys() == everyone[customer_id].keys()
        assert all(np.isnan(v) and np.isnan(everyone[customer_id][k]) or v == everyone[customer_id][k]
                   for k, v in values.items())


def test_the_spilled_table_reads_back_blocks_rows_and_samples(people, settings, tmp_path, monkeypatch):
    from insights.features import extraction
    from insights.table import FeatureTable, draw

    settings.INSIGHTS_SPILL_DIR = str(tmp_path)
    monkeypatch.setattr(extraction, "CHUNK_CUSTOMERS", 3)  # blocks of three ids
    for i in range(7):
        Customer.objects.create(external_id=f"more-{i}", plan="pro" if i % 2 else "free")
    features = catalogue()
    everyone = rows(features)
    with FeatureTable.read(features, now=NOW) as table:
        assert list(tmp_path.iterdir()) == []  # unlinked: no other process can open it
        assert len(table) == len(everyone) == 9 and len(list(table.blocks())) >= 3
        stacked = np.vstack([values for _, values in table.blocks()])
        expected = np.array([[everyone[int(i)][f.name] for f in features] for i in table.ids])
        np.testing.assert_array_equal(stacked, expected)
        picked = draw(len(table), 4, seed=3)
        assert len(picked) == 4 and list(picked) == sorted(set(picked.tolist()))
        assert np.array_equal(draw(len(table), 4, seed=3), picked)  # seeded
        np.testing.assert_array_equal(table.rows(picked), expected[picked])
        assert table.column("days_since_last_seen") == 0
    assert draw(np.array([5, 2, 9]), 10, seed=1).tolist() == [2, 5, 9]
