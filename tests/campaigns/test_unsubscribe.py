"""The unsubscribe page an email links to: open without login, GET confirms without
changing anything, POST (a form or RFC 8058 one-click, without CSRF) withdraws email
consent once; a bad, tampered or foreign token is a 400 page and changes nothing."""

from __future__ import annotations

from django.db import connection
from django.test import Client

from campaigns import sending
from campaigns.services.campaigns import campaign_create
from customers.models import Consent, ConsentChange
from tests.campaigns.conftest import T0, people, static_segment
from tests.conftest import host_of, membership_of

ONE_CLICK = "application/x-www-form-urlencoded"


def _setup(tenant):
    connection.set_tenant(tenant)
    admin = membership_of(tenant, f"admin@{tenant.slug}.test")
    ada = people(1, prefix=f"{tenant.slug}-ada")[0]
    campaign = campaign_create(actor=admin, name="News", segment_id=static_segment("news", [ada]).pk, channel="email",
                               schedule={"kind": "once", "at": T0.isoformat()},
                               content={"subject": "Hi", "body": "Hello"})
    token = sending.unsubscribe_token(campaign, ada)
    connection.set_schema_to_public()
    return ada, campaign, token


def _email_granted(tenant, customer) -> bool:
    connection.set_tenant(tenant)
    granted = Consent.objects.get(customer=customer, channel="email").granted
    connection.set_schema_to_public()
    return granted


def _withdrawals(tenant, customer) -> int:
    connection.set_tenant(tenant)
    count = ConsentChange.objects.filter(customer=customer, channel="email", granted=False).count()
    connection.set_schema_to_public()
    return count


def test_get_shows_a_confirmation_and_changes_nothing(tenant):
    """A GET (what a mail scanner's prefetch does) only asks; no login is needed."""
    ada, _, token = _setup(tenant)
    response = Client(HTTP_HOST=host_of(tenant)).get(f"/unsubscribe/{token}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="unsubscribe-confirm"' in body and "<form method=\"post\"" in body
    assert "csrfmiddlewaretoken" in body
    assert _email_granted(tenant, ada) is True


def test_post_unsubscribes_once_and_is_idempotent(tenant):
    """The button's POST withdraws email consent; a second POST records nothing new."""
    ada, campaign, token = _setup(tenant)
    client = Client(HTTP_HOST=host_of(tenant))
    first = client.post(f"/unsubscribe/{token}/")
    assert first.status_code == 200 and "You are unsubscribed" in first.content.decode()
    assert client.post(f"/unsubscribe/{token}/").status_code == 200
    assert _email_granted(tenant, ada) is False
    assert _withdrawals(tenant, ada) == 1
    again = client.get(f"/unsubscribe/{token}/")
    assert 'data-testid="unsubscribe-done"' in again.content.decode()


def test_rfc8058_one_click_post_works_without_csrf(tenant):
    """A mail provider's one-click POST carries no cookie or CSRF token: it still works."""
    ada, _, token = _setup(tenant)
    client = Client(HTTP_HOST=host_of(tenant), enforce_csrf_checks=True)
    response = client.post(f"/unsubscribe/{token}/", "List-Unsubscribe=One-Click", content_type=ONE_CLICK)
    assert response.status_code == 200 and "You are unsubscribed" in response.content.decode()
    assert _email_granted(tenant, ada) is False


def test_a_tampered_token_is_a_400_page_and_changes_nothing(tenant):
    ada, _, token = _setup(tenant)
    client = Client(HTTP_HOST=host_of(tenant), enforce_csrf_checks=True)
    tampered = token[:-3] + ("abc" if token[-3:] != "abc" else "xyz")
    for response in (client.get(f"/unsubscribe/{tampered}/"), client.post(f"/unsubscribe/{tampered}/"),
                     client.post("/unsubscribe/not-a-token/", "List-Unsubscribe=One-Click", content_type=ONE_CLICK)):
        assert response.status_code == 400
        assert "This unsubscribe link is not valid" in response.content.decode()
    assert _email_granted(tenant, ada) is True
    assert _withdrawals(tenant, ada) == 0


def test_a_token_of_another_workspace_does_nothing_here(tenant, other_tenant):
    """A beta token on alpha's host is refused, even if an alpha customer has the same id."""
    _, _, beta_token = _setup(other_tenant)
    ada, _, _ = _setup(tenant)
    response = Client(HTTP_HOST=host_of(tenant)).post(f"/unsubscribe/{beta_token}/")
    assert response.status_code == 400
    assert _email_granted(tenant, ada) is True
