"""Company sign-up on the public site and the jump into the new workspace."""

import time_machine
from django.test import Client

from tenants.handoff import handoff_token_create, handoff_token_redeem
from tenants.models import Tenant, User
from tests.conftest import host_of, make_member

GOOD = {"name": "Gamma GmbH", "slug": "gamma", "admin_email": "ceo@gamma.test", "password": "a-long-secret-42"}


def test_signup_creates_workspace_and_lands_logged_in(public_client):
    """Sign-up → enter the new workspace → handoff → overview on the subdomain, logged in."""
    created = public_client.post("/signup/", GOOD)
    assert created.status_code == 302 and created["Location"] == "/workspaces/gamma/enter/"
    entered = public_client.get(created["Location"])
    assert entered["Location"].startswith("http://gamma.localhost/auth/handoff/?token=")
    # A browser has no cookie for the subdomain yet (they cannot be shared on *.localhost).
    subdomain = Client(HTTP_HOST="gamma.localhost")
    landed = subdomain.get(entered["Location"].removeprefix("http://gamma.localhost"), follow=True)
    assert landed.status_code == 200
    assert b"Overview" in landed.content and b"ceo@gamma.test" in landed.content
    assert Tenant.objects.get(slug="gamma").memberships.get().role.key == "admin"


def test_signup_with_bad_input_shows_errors_and_creates_nothing(public_client):
    cases = [
        ({"slug": "www"}, "reserved"),
        ({"slug": "Gamma"}, "lower-case"),
        ({"slug": "g" * 40}, "at most 32"),
        ({"slug": "alpha"}, "already taken"),
        ({"admin_email": "nope"}, "valid email"),
        ({"password": "short"}, "at least 10 characters"),
        ({"name": ""}, "required"),
    ]
    for change, message in cases:
        response = public_client.post("/signup/", GOOD | change)
        assert response.status_code == 400, change
        assert message in response.content.decode(), change
    assert not Tenant.objects.filter(slug__in=["gamma", "www"]).exists()
    assert not User.objects.filter(email="ceo@gamma.test").exists()


def test_handoff_token_is_single_use(tenant):
    user = make_member(tenant, "hop@alpha.test")
    token = handoff_token_create(user=user, tenant=tenant)
    assert handoff_token_redeem(token=token, tenant=tenant) == user
    assert handoff_token_redeem(token=token, tenant=tenant) is None


def test_handoff_token_is_bound_to_its_tenant(tenant, other_tenant):
    user = make_member(tenant, "hop2@alpha.test")
    token = handoff_token_create(user=user, tenant=tenant)
    assert handoff_token_redeem(token=token, tenant=other_tenant) is None


def test_handoff_token_expires_after_a_minute(tenant):
    user = make_member(tenant, "hop3@alpha.test")
    with time_machine.travel("2026-11-23 12:00:00Z", tick=False):
        token = handoff_token_create(user=user, tenant=tenant)
    with time_machine.travel("2026-11-23 12:01:30Z", tick=False):
        assert handoff_token_redeem(token=token, tenant=tenant) is None


def test_tampered_or_missing_token_sends_to_login(tenant):
    client = Client(HTTP_HOST=host_of(tenant))
    for query in ("", "?token=garbage", "?token=" + "x" * 5000):
        response = client.get(f"/auth/handoff/{query}")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_enter_then_handoff_logs_in_on_the_subdomain(tenant):
    user = make_member(tenant, "jumper@alpha.test")
    public = Client(HTTP_HOST="localhost")
    public.force_login(user)
    response = public.get(f"/workspaces/{tenant.slug}/enter/")
    assert response.status_code == 302
    assert response["Location"].startswith("http://alpha.localhost/auth/handoff/?token=")
    fresh = Client(HTTP_HOST=host_of(tenant))  # no session on the subdomain yet
    landed = fresh.get(response["Location"].removeprefix("http://alpha.localhost"), follow=True)
    assert landed.status_code == 200 and b"jumper@alpha.test" in landed.content
