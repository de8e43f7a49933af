"""The data generator: exact counts, determinism, planted personas and churners, surveys,
consent and revenue (demo/generator/)."""

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from statistics import mean, median
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, F, Max, Min

from demo.generator import generate
from demo.personas import CUSTOM_TRAITS, PERSONA_KEYS
from customers.models import (
    Consent, ConsentChange, Customer, Event, EventDefinition, GeneratorTruth, SurveyResponse, TraitDefinition,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture
def planted(in_tenant):
    """600 customers / 15,000 events: enough for every persona to show its traits."""
    result = generate(customers=600, events=15_000, now=NOW, seed=2)
    truth = dict(GeneratorTruth.objects.values_list("customer_id", "persona"))
    return result, truth


def by_persona(truth, pairs):
    grouped = defaultdict(list)
    for customer_id, value in pairs:
        grouped[truth[customer_id]].append(value)
    return grouped


def test_counts_are_exact_and_every_event_lies_in_its_customers_life(in_tenant):
    """N customers, exactly M events (one user_signed_up each, at sign-up), all before now,
    none before sign-up, and last_seen_at is the customer's last event."""
    result = generate(customers=300, events=6_000, now=NOW, seed=1)
    assert (result.customers, result.events) == (300, 6_000)
    assert Customer.objects.count() == 300 and Event.objects.count() == 6_000
    assert GeneratorTruth.objects.count() == 300
    signups = Event.objects.filter(name="user_signed_up")
    assert signups.count() == 300 and signups.values("customer").distinct().count() == 300
    assert not signups.exclude(timestamp=F("customer__signed_up_at")).exists()
    assert not Event.objects.filter(timestamp__lt=F("customer__signed_up_at")).exists()
    assert Event.objects.aggregate(last=Max("timestamp"))["last"] < NOW
    last = Customer.objects.annotate(last_event=Max("events__timestamp"))
    assert not last.exclude(last_seen_at=F("last_event")).exists()
    names = set(Event.objects.values_list("name", flat=True).distinct())
    assert {"user_signed_up", "login", "page_viewed", "project_created", "api_key_generated", "feature_x_used",
            "purchase", "subscription_upgraded", "subscription_cancelled", "invite_sent"} <= names
    assert "order_completed" not in names


def test_fewer_events_than_customers_still_exact(in_tenant):
    """With M < N only the first M customers get their sign-up event; the rest have no
    events and no last_seen_at."""
    result = generate(customers=40, events=15, now=NOW, seed=4)
    assert result.events == 15 and Event.objects.count() == 15
    assert Customer.objects.filter(last_seen_at__isnull=True).count() == 25


def test_generator_is_deterministic_for_a_seed_and_appends(in_tenant):
    """The same (seed, now) makes the same data; a rerun appends with continuing ids; another
    seed makes other data."""
    def snapshot(first_number):
        customers = Customer.objects.filter(external_id__gte=f"gen-{first_number:08d}",
                                            external_id__lt=f"gen-{first_number + 50:08d}").order_by("external_id")
        rows = list(customers.values_list("name", "country", "plan", "company_size", "tech_stack", "signed_up_at",
                                          "last_seen_at", "email_opt_in", "traits", "generator_truth__persona",
                                          "generator_truth__churned_at"))
        position = {cid: i for i, cid in enumerate(customers.values_list("id", flat=True))}
        events = sorted((position[c], n, ts, str(p)) for c, n, ts, p in Event.objects.filter(
            customer__in=position).values_list("customer_id", "name", "timestamp", "properties"))
        answers = sorted((position[c], s, float(v), ts) for c, s, v, ts in SurveyResponse.objects.filter(
            customer__in=position).values_list("customer_id", "survey__key", "score", "responded_at"))
        return rows, events, answers

    generate(customers=50, events=900, now=NOW, seed=5)
    generate(customers=50, events=900, now=NOW, seed=5)
    assert Customer.objects.count() == 100
    assert Customer.objects.order_by("external_id").values_list("external_id", flat=True)[50] == "gen-00000050"
    first, second = snapshot(0), snapshot(50)
    assert first == second and len(first[1]) == 900
    generate(customers=50, events=900, now=NOW, seed=6)
    assert snapshot(100)[0] != first[0]


def test_generated_events_are_registered_for_the_builder(in_tenant):
    """The event registry (autocomplete, unknown-event warnings) knows every generated name
    with its volume, first/last seen and property types; a second run adds to the volumes."""
    generate(customers=60, events=1_500, now=NOW, seed=3)
    stats = {row["name"]: row for row in Event.objects.values("name").annotate(
        n=Count("id"), first=Min("timestamp"), last=Max("timestamp"))}
    registry = {d.name: d for d in EventDefinition.objects.all()}
    assert set(registry) == set(stats)
    for name, row in stats.items():
        assert (registry[name].volume, registry[name].first_seen_at, registry[name].last_seen_at) == (
            row["n"], row["first"], row["last"])
    assert registry["purchase"].properties["amount"] == "number"
    generate(customers=10, events=200, now=NOW, seed=4)
    assert sum(EventDefinition.objects.values_list("volume", flat=True)) == Event.objects.count() == 1_700


def test_personas_are_planted_with_distinct_traits_and_behaviour(planted):
    """Each persona shows in its traits and its behaviour; the label itself is only in
    GeneratorTruth, not on the customer."""
    result, truth = planted
    assert set(truth.values()) == set(PERSONA_KEYS) and len(PERSONA_KEYS) >= 5
    assert sum(result.personas.values()) == 600 and min(result.personas.values()) >= 20
    customers = Customer.objects.all()

    def share(field, value):
        grouped = by_persona(truth, customers.values_list("id", field))
        return {p: mean(v == value for v in values) for p, values in grouped.items()}

    def leader(scores):
        return max(scores, key=scores.get)

    mobile = share("device_type", "mobile")
    assert mobile["mobile_casual"] > 0.7
    assert max(v for p, v in mobile.items() if p != "mobile_casual") < mobile["mobile_casual"] - 0.25
    assert leader(share("plan", "enterprise")) == "enterprise_buyer"
    assert leader(share("plan", "team")) == "team_admin"
    assert leader(share("plan", "free")) == "evaluator"
    assert leader(share("occupation", "engineer")) == "power_builder"
    sizes = by_persona(truth, customers.values_list("id", "company_size"))
    assert median(sizes["enterprise_buyer"]) > 10 * max(median(v) for p, v in sizes.items() if p != "enterprise_buyer")
    sensitivity = by_persona(truth, [(c, t["price_sensitivity"]) for c, t in customers.values_list("id", "traits")])
    assert leader({p: mean(v) for p, v in sensitivity.items()}) == "bargain_hunter"

    def events_per_customer(name, **where):
        counts = dict(Event.objects.filter(name=name, **where).values_list("customer").annotate(n=Count("id")))
        return {p: mean(counts.get(c, 0) for c, q in truth.items() if q == p) for p in PERSONA_KEYS}

    assert leader(events_per_customer("feature_x_used", properties__feature="api")) == "power_builder"
    assert leader(events_per_customer("invite_sent")) == "team_admin"
    assert leader(events_per_customer("page_viewed", properties__path="/pricing")) in {"evaluator", "bargain_hunter"}
    assert leader(events_per_customer("feature_x_used", properties__feature="mobile_sync")) == "mobile_casual"
    assert leader(events_per_customer("support_ticket_opened", properties__topic="security_review")) == "enterprise_buyer"
    one_offs = by_persona(truth, Event.objects.filter(name="purchase", properties__kind="one_off")
                          .values_list("customer_id", "properties__amount"))
    averages = {p: mean(v) for p, v in one_offs.items() if len(v) >= 5}
    assert min(averages, key=averages.get) == "bargain_hunter"
    nps = by_persona(truth, SurveyResponse.objects.filter(survey__key="nps").values_list("customer_id", "score"))
    assert mean(nps["power_builder"]) - mean(nps["bargain_hunter"]) > 2
    # no trait gives the answer away
    assert not any(t.keys() - {k for k, *_ in CUSTOM_TRAITS} for t in customers.values_list("traits", flat=True))


def test_the_weekend_persona_is_active_from_friday_evening_to_sunday_and_spends_most(planted):
    """The seed's "weekend power user": most of its events fall between Friday 18:00 and
    Sunday 16:00 on its local clock (other personas spread over the week), and it spends
    three times what the average self-serve customer does (enterprise invoices, a
    different scale, left out)."""
    _, truth = planted
    zones = dict(Customer.objects.values_list("id", "timezone"))

    def in_weekend(customer_id, moment):
        local = moment.astimezone(ZoneInfo(zones[customer_id]))
        hours = (local.isoweekday() - 1) * 24 + local.hour + local.minute / 60
        return 4 * 24 + 18 <= hours < 6 * 24 + 16

    shares = defaultdict(list)
    for customer_id, moment in Event.objects.exclude(name="user_signed_up").values_list("customer_id", "timestamp"):
        shares[truth[customer_id]].append(in_weekend(customer_id, moment))
    assert mean(shares["weekend_power_user"]) > 0.8
    assert max(mean(v) for p, v in shares.items() if p != "weekend_power_user") < 0.35
    spend = defaultdict(float)
    for customer_id, amount in Event.objects.filter(name="purchase").values_list("customer_id", "properties__amount"):
        spend[customer_id] += amount
    self_serve = set(Customer.objects.exclude(plan="enterprise").values_list("id", flat=True))
    average = mean(spend.get(c, 0.0) for c in truth if c in self_serve)
    weekenders = mean(spend.get(c, 0.0) for c, p in truth.items() if p == "weekend_power_user" and c in self_serve)
    assert weekenders > 3 * average


def test_churners_decay_then_stop_well_before_now(planted):
    """A churner's events thin out over its life and stop at churned_at (its last event, a
    month or more before now); paying churners mostly end with subscription_cancelled."""
    churners = GeneratorTruth.objects.filter(churned=True).select_related("customer")
    assert 0.15 < churners.count() / 600 < 0.5
    assert not GeneratorTruth.objects.filter(churned=False, churned_at__isnull=False).exists()
    life = {c.customer_id: (c.customer.signed_up_at, c.churned_at) for c in churners}
    for truth in churners:
        assert truth.churned_at == truth.customer.last_seen_at
        assert truth.churned_at <= NOW - timedelta(days=30)
    assert not Event.objects.filter(customer__generator_truth__churned=True,
                                    timestamp__gt=F("customer__generator_truth__churned_at")).exists()
    halves = [0, 0]  # the final event at churned_at aside
    for customer_id, ts in Event.objects.filter(
            customer__in=life, name__in=["login", "page_viewed", "feature_x_used"],
            timestamp__lt=F("customer__generator_truth__churned_at")).values_list(
            "customer_id", "timestamp"):
        start, end = life[customer_id]
        halves[ts > start + (end - start) / 2] += 1
    assert halves[0] > 2.5 * halves[1]
    # the active customers' random events spread evenly over their lives
    active = Customer.objects.filter(generator_truth__churned=False).values_list("id", "signed_up_at")
    spans = dict(active)
    even = [0, 0]
    for customer_id, ts in Event.objects.filter(customer__in=spans, name__in=["login", "page_viewed"]).values_list(
            "customer_id", "timestamp"):
        start = spans[customer_id]
        even[ts > start + (NOW - start) / 2] += 1
    assert 0.7 < even[0] / even[1] < 1.4
    paying = churners.exclude(customer__plan="free")
    cancelled = Event.objects.filter(name="subscription_cancelled")
    assert not cancelled.filter(customer__generator_truth__churned=False).exists()
    assert cancelled.filter(timestamp=F("customer__generator_truth__churned_at")).count() == cancelled.count()
    assert cancelled.count() > 0.5 * paying.count()


def test_surveys_and_consent_are_valid_and_follow_persona_and_churn(planted):
    """NPS 0–10 and CSAT 1–5 inside the customer's life; churners answer lower; consent per
    channel has its history, the latest change is the current answer, and email_opt_in
    matches the email consent."""
    answers = SurveyResponse.objects.select_related("survey", "customer")
    assert answers.filter(survey__key="nps").count() > 100 and answers.filter(survey__key="csat").count() > 50
    for a in answers:
        low, high = (0, 10) if a.survey.key == "nps" else (1, 5)
        assert low <= a.score <= high and a.score == int(a.score)
        assert a.customer.signed_up_at <= a.responded_at <= a.customer.last_seen_at
    scores = defaultdict(list)
    for churned, score in answers.filter(survey__key="nps").values_list("customer__generator_truth__churned", "score"):
        scores[churned].append(float(score))
    assert mean(scores[False]) - mean(scores[True]) > 1.0

    consents = list(Consent.objects.values_list("customer_id", "channel", "granted", "changed_at"))
    assert {c for _, c, _, _ in consents} == {"email", "sms", "push", "in_app", "ads"}
    latest = {}
    for customer_id, channel, granted, changed_at in ConsentChange.objects.order_by("changed_at", "id").values_list(
            "customer_id", "channel", "granted", "changed_at"):
        latest[customer_id, channel] = (granted, changed_at)
    assert {(c, ch): (g, at) for c, ch, g, at in consents} == latest
    opted = set(Consent.objects.filter(channel="email", granted=True).values_list("customer_id", flat=True))
    assert opted == set(Customer.objects.filter(email_opt_in=True).values_list("id", flat=True))
    assert not ConsentChange.objects.filter(changed_at__gt=F("customer__last_seen_at")).exists()
    grants = defaultdict(list)
    for persona, granted in Consent.objects.filter(channel="push").values_list(
            "customer__generator_truth__persona", "granted"):
        grants[persona].append(granted)
    assert max(grants, key=lambda p: mean(grants[p])) == "mobile_casual"


def test_revenue_events_carry_numeric_amounts_and_follow_the_plan(planted):
    """Every purchase has a numeric amount in USD; subscription invoices come monthly or
    yearly for paid plans at the plan's price; free customers get no invoices."""
    purchases = Event.objects.filter(name="purchase")
    assert purchases.filter(properties__kind="subscription").count() > 300
    for props in purchases.values_list("properties", flat=True):
        assert isinstance(props["amount"], float) and props["amount"] > 0 and props["currency"] == "USD"
    starter = purchases.filter(properties__kind="subscription", customer__plan="starter")
    assert set(starter.values_list("properties__amount", flat=True)) <= {19.0, 190.0}
    assert not purchases.filter(properties__kind="subscription", customer__plan="free").exists()
    monthly = Customer.objects.filter(plan="pro", traits__billing_cycle="monthly", generator_truth__churned=False)
    gaps = []
    for customer in monthly[:20]:
        stamps = list(purchases.filter(customer=customer, properties__kind="subscription")
                      .order_by("timestamp").values_list("timestamp", flat=True))
        gaps += [(b - a).days for a, b in zip(stamps, stamps[1:])]
    assert gaps and all(29 <= g <= 31 for g in gaps)
    upgraded = Event.objects.filter(name="subscription_upgraded")
    pairs = list(upgraded.values_list("properties__to_plan", "customer__plan"))
    assert pairs and all(to_plan == plan != "free" for to_plan, plan in pairs)


def test_custom_traits_are_registered_with_their_categories(planted):
    """psychographic, needs and value traits are in the registry with their types."""
    registered = dict(TraitDefinition.objects.filter(is_builtin=False).values_list("key", "category"))
    assert {k: c for k, _t, c, _d in CUSTOM_TRAITS}.items() <= registered.items()
    assert {"psychographic", "needs", "value"} <= set(registered.values())


def test_generate_demo_command_reports_counts_time_and_peak_memory(tenant):
    """The command appends to the named tenant and ends with time, rates and peak memory."""
    from io import StringIO

    from django.core.management import call_command
    from django_tenants.utils import schema_context

    out = StringIO()
    call_command("generate_demo", tenant="alpha", customers=30, events=400, seed=3, stdout=out)
    text = out.getvalue()
    assert "alpha: +30 customers, +400 events" in text and "peak memory" in text and "events/s" in text
    assert "personas: power_builder" in text
    with schema_context(tenant.schema_name):
        assert Event.objects.count() == 400 and GeneratorTruth.objects.count() == 30
