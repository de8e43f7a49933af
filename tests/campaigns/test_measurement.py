"""Plays and their KPI actuals from data, campaign results (treatment vs holdout with
lift), and the hashed ad-audience export."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest

from campaigns import lift, sending
from campaigns.audience import normalise_phone
from campaigns.models import Assignment
from campaigns.plays.services import play_create, play_kpi, play_update
from campaigns.services.campaigns import campaign_create, campaign_launch, campaign_results
from campaigns.services.exports import audience_export
from common.errors import DomainError
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Consent, Customer
from tests.campaigns.conftest import T0, people, static_segment

DAY = timedelta(days=1)


def track(customer: Customer, event: str, at, n: int = 0) -> None:
    ingest_messages(messages=[Message(type="track", user_id=customer.external_id, event=event, timestamp=at,
                                      message_id=f"{customer.external_id}-{event}-{at.isoformat()}-{n}")],
                    source="test", now=at)


def test_feature_adoption_is_the_share_of_members_who_did_the_event_in_the_window(alpha_admin):
    crowd = people(4)
    play = play_create(actor=alpha_admin, name="Adopt exports", segment_id=static_segment("s", crowd).pk,
                       tactic_type="in_app", kpi="feature_adoption", kpi_event="export_used", target="0.4",
                       starts_on=T0.date(), ends_on=(T0 + 9 * DAY).date())
    track(crowd[0], "export_used", T0 + DAY)
    track(crowd[1], "export_used", T0 - DAY)  # before the window
    track(crowd[2], "export_used", T0 + 20 * DAY)  # after it
    actual = play_kpi(actor=alpha_admin, play=play, now=T0 + 30 * DAY)
    assert (actual["numerator"], actual["denominator"], actual["value"], actual["met"]) == (1, 4, 0.25, False)


def test_a_custom_kpi_counts_the_event_within_n_days_of_entering(alpha_admin):
    early, late = people(2)
    segment = static_segment("s", [early])
    from segments import engine

    engine.members_add(segment=segment, customer_ids=[late.pk], now=T0 + 5 * DAY)
    play = play_create(actor=alpha_admin, name="Activate", segment_id=segment.pk, tactic_type="email", kpi="custom",
                       kpi_event="project_created", kpi_days=3, starts_on=T0.date())
    track(early, "project_created", T0 + 4 * DAY)  # 4 days after entering: too late
    track(late, "project_created", T0 + 7 * DAY)  # 2 days after entering
    actual = play_kpi(actor=alpha_admin, play=play, now=T0 + 30 * DAY)
    assert (actual["numerator"], actual["denominator"]) == (1, 2)


def test_cac_is_spend_over_customers_acquired_in_the_period(alpha_admin):
    prospects = people(3)
    Customer.objects.filter(pk__in=[p.pk for p in prospects[:2]]).update(signed_up_at=T0 + DAY)
    Customer.objects.filter(pk=prospects[2].pk).update(signed_up_at=T0 - 90 * DAY)
    play = play_create(actor=alpha_admin, name="Paid social", segment_id=static_segment("p", prospects).pk,
                       tactic_type="ad_audience", kpi="cac", spend="500.00", target="300",
                       starts_on=T0.date(), ends_on=(T0 + 27 * DAY).date())
    actual = play_kpi(actor=alpha_admin, play=play, now=T0 + 40 * DAY)
    assert (actual["value"], actual["met"]) == (250.0, True)  # 500 / 2, lower than the target is good


def test_churn_rate_counts_members_with_no_event_for_the_inactivity_period(alpha_admin):
    crowd = people(4)
    play = play_create(actor=alpha_admin, name="Save them", segment_id=static_segment("risk", crowd).pk,
                       tactic_type="success_call", kpi="churn_rate", starts_on=(T0 + DAY).date(),
                       ends_on=(T0 + 60 * DAY).date())
    for person in crowd[:3]:
        track(person, "login", T0 + 50 * DAY)  # active in the last 30 days of the window
    actual = play_kpi(actor=alpha_admin, play=play, now=T0 + 90 * DAY)
    assert (actual["numerator"], actual["denominator"], actual["value"]) == (1, 4, 0.25)


def test_play_validation_names_every_problem(alpha_admin):
    with pytest.raises(DomainError) as error:
        play_create(actor=alpha_admin, name="x", segment_id=None, tactic_type="carrier_pigeon", kpi="cac",
                    starts_on="2026-06-10", ends_on="2026-06-01", department_id=424242)
    assert sorted((p.path, p.code) for p in error.value.problems) == sorted([
        ("segment_id", "required"), ("tactic_type", "invalid_choice"), ("spend", "required"),
        ("ends_on", "before_start"), ("department_id", "unknown_department")])
    play = play_create(actor=alpha_admin, name="Trial nurture", segment_id=static_segment("t", []).pk,
                       tactic_type="email", kpi="conversion_rate", kpi_event="upgraded", kpi_days=14)
    assert play_update(actor=alpha_admin, play=play, target=Decimal("0.1")).target == Decimal("0.1")


def test_results_compare_treatment_with_holdout_using_lift(alpha_admin):
    crowd = people(120)
    campaign = campaign_create(actor=alpha_admin, name="Upgrade", segment_id=static_segment("u", crowd).pk,
                               channel="email", schedule={"kind": "once", "at": T0.isoformat()},
                               content={"subject": "Go pro", "body": "Hi"}, holdout_percent=40,
                               goal_event="upgraded", goal_days=7)
    campaign_launch(actor=alpha_admin, campaign=campaign, now=T0)
    sending.assign_members(campaign=campaign, now=T0)
    arms = dict(Assignment.objects.filter(campaign=campaign).values_list("customer_id", "group"))
    for index, person in enumerate(crowd):
        if index % 3 == 0:
            track(person, "upgraded", T0 + 2 * DAY)  # inside the goal window
        elif index % 7 == 0:
            track(person, "upgraded", T0 + 10 * DAY)  # too late to count
    converted = {p.pk for i, p in enumerate(crowd) if i % 3 == 0}
    expected = lift.lift(
        treatment_n=sum(g == "treatment" for g in arms.values()),
        treatment_conversions=sum(arms[c] == "treatment" for c in converted),
        holdout_n=sum(g == "holdout" for g in arms.values()),
        holdout_conversions=sum(arms[c] == "holdout" for c in converted))
    results = campaign_results(actor=alpha_admin, campaign=campaign, now=T0 + 30 * DAY)
    assert results["overall"] == expected.as_dict()
    assert results["overall"]["holdout_n"] > 20


def test_the_ad_audience_is_hashed_normalised_emails_and_phones(alpha_admin):
    ada = Customer.objects.create(external_id="ada", email="  Ada@Example.COM ", traits={"phone": "+44 20 7946 0958"})
    bo = Customer.objects.create(external_id="bo", email="", traits={"phone": "0044 (20) 7946-0959"})
    Customer.objects.create(external_id="cy", email="", traits={"phone": "020 7946 0960"})  # no country code: left out
    dee = Customer.objects.create(external_id="dee", email="dee@example.com")  # never asked: no consent
    eve = Customer.objects.create(external_id="eve", email="eve@example.com")  # withdrew
    for customer in Customer.objects.filter(external_id__in=["ada", "bo", "cy"]):
        Consent.objects.create(customer=customer, channel="ads", granted=True, changed_at=T0)
    Consent.objects.create(customer=eve, channel="ads", granted=False, changed_at=T0)
    Consent.objects.create(customer=dee, channel="email", granted=True, changed_at=T0)  # another channel
    segment = static_segment("ads", list(Customer.objects.filter(external_id__in=["ada", "bo", "cy", "dee", "eve"])))
    text = "".join(audience_export(actor=alpha_admin, segment=segment))
    sha = lambda v: hashlib.sha256(v.encode()).hexdigest()  # noqa: E731
    assert text.splitlines() == ["email_sha256,phone_sha256", f"{sha('ada@example.com')},{sha('442079460958')}",
                                 f",{sha('442079460959')}"]
    assert normalise_phone("+1 (415) 555-0100") == "14155550100" and normalise_phone(True) == ""
    assert ada and bo
