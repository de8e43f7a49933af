"""A fully described customer for the customer pages and privacy tests: traits in several
categories (one custom trait marked PII), an anonymous id merged in, events with personal
keys in their properties, survey answers with a comment, consent with history, metrics.

Written through the real write paths (ingestion, feedback recording); metrics, which the
refresher computes, are stored directly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.db import connection

from customers.feedback import ConsentChangeIn, SurveyAnswerIn, consents_record, survey_answers_record
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, CustomerMetrics, TraitDefinition
from tests.conftest import session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
EMAIL, NAME = "ada.lovelace@example.test", "Ada Lovelace"
PHONE = "+44 20 7946 0958"
EVENTS = 30  # more than one timeline page (25)


client_as = session  # the name the customer and segment page tests use


def make_ada(tenant, external_id: str = "ada-1") -> Customer:
    """Ada, with everything a profile can show. Leaves the connection in `tenant`'s schema."""
    connection.set_tenant(tenant)
    messages = [
        Message(type="identify", user_id=external_id, anonymous_id="anon-device-7", timestamp=NOW - timedelta(days=40),
                traits={"email": EMAIL, "name": NAME, "birth_date": "1815-12-10", "country": "GB", "city": "London",
                        "company": "Analytical Engines", "industry": "Software", "plan": "pro", "company_size": 12,
                        "tech_stack": ["python", "django"], "phone": PHONE, "favourite_colour": "teal"}),
    ]
    for i in range(EVENTS):
        properties = {"path": f"/page/{i}", "seats": i}
        if i == 0:
            properties.update({"Email": EMAIL, "contact": {"phone": PHONE, "city": "London"}, "name": NAME})
        messages.append(Message(type="track", event="project_created" if i % 2 else "page_viewed",
                                user_id=external_id, timestamp=NOW - timedelta(days=30 - i), properties=properties,
                                message_id=f"{external_id}-m{i}", index=i + 1))
    result = ingest_messages(messages=messages, source="api", now=NOW)
    assert not result.problems, result.problems
    # The registry marks `phone` as personal and files `favourite_colour` as psychographic.
    TraitDefinition.objects.filter(key="phone").update(is_pii=True, category="demographic")
    TraitDefinition.objects.filter(key="favourite_colour").update(category="psychographic")
    customer = Customer.objects.get(external_id=external_id)
    stored, problems = survey_answers_record(answers=[
        SurveyAnswerIn(customer.pk, "nps", 9, NOW - timedelta(days=5), comment=f"Great! Call me, {NAME}"),
        SurveyAnswerIn(customer.pk, "csat", 2, NOW - timedelta(days=3)),
    ])
    assert stored == 2 and not problems
    assert not consents_record(changes=[
        ConsentChangeIn(customer.pk, "email", True, NOW - timedelta(days=20), "signup"),
        ConsentChangeIn(customer.pk, "email", False, NOW - timedelta(days=2), "preferences"),
        ConsentChangeIn(customer.pk, "sms", True, NOW - timedelta(days=10), "checkout"),
    ])
    CustomerMetrics.objects.create(
        customer=customer, recency_days=1.5, frequency=15, monetary=Decimal("1234.50"), r_score=5, f_score=4,
        m_score=3, rfm_segment="loyal", arpu=Decimal("102.88"), ltv=Decimal("1728.40"), engagement_score=0.82,
        computed_at=NOW - timedelta(hours=3))
    return customer


def plain_customer(external_id: str, **fields) -> Customer:
    """A customer made through ingestion with the given built-in traits (connection in a tenant)."""
    last_seen = fields.pop("last_seen_at", None)
    result = ingest_messages(messages=[Message(type="identify", user_id=external_id, timestamp=NOW, traits=fields)],
                             source="api", now=NOW)
    assert not result.problems, result.problems
    customer = Customer.objects.get(external_id=external_id)
    # identify sets last_seen_at to the message time; tests set it where it matters.
    Customer.objects.filter(pk=customer.pk).update(last_seen_at=last_seen)
    customer.refresh_from_db()
    return customer
