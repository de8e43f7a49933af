from datetime import datetime, timedelta, timezone

from django.db.models import F, Max, Min

from customers.generator import generate
from customers.models import Customer, Event

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def test_generator_writes_the_requested_rows_inside_each_lifetime(in_tenant):
    result = generate(customers=60, events=900, now=NOW, seed=1)
    assert (result.customers, result.events) == (60, 900)
    assert Customer.objects.count() == 60 and Event.objects.count() == 900
    assert Event.objects.filter(name="user_signed_up").count() == 60
    # no event before its customer signed up, none after their last activity or now
    assert not Event.objects.filter(timestamp__lt=F("customer__signed_up_at") - timedelta(seconds=1)).exists()
    assert Event.objects.aggregate(last=Max("timestamp"))["last"] <= NOW
    assert Customer.objects.filter(signed_up_at__gt=F("last_seen_at")).count() == 0


def test_generator_is_deterministic_and_appends_on_rerun(in_tenant):
    generate(customers=20, events=200, now=NOW, seed=5)
    first = list(Customer.objects.order_by("external_id").values_list("external_id", "country", "plan"))
    generate(customers=20, events=200, now=NOW, seed=5)
    assert Customer.objects.count() == 40
    ids = list(Customer.objects.order_by("external_id").values_list("external_id", flat=True))
    assert ids[:20] == [row[0] for row in first] and ids[20] == "gen-00000020"


def test_generated_orders_carry_a_numeric_amount(in_tenant):
    generate(customers=30, events=3000, now=NOW, seed=3)
    amounts = Event.objects.filter(name="order_completed").values_list("properties__amount", flat=True)
    assert amounts and all(isinstance(a, float) and 10 <= a <= 300 for a in amounts)
    span = Customer.objects.aggregate(first=Min("signed_up_at"), last=Max("signed_up_at"))
    assert span["first"] < span["last"]
