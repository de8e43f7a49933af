"""The first journeys a person takes: log into a workspace; sign a company up."""

import uuid

import pytest
from django.db import connection
from playwright.sync_api import expect

from tenants.models import Tenant, User
from tests.conftest import PASSWORD, make_member


def url(strata_server, host: str, path: str = "/") -> str:
    return f"http://{host}:{strata_server.port}{path}"


@pytest.fixture
def alpha_admin(committed_db):
    email = f"browser-{uuid.uuid4().hex[:8]}@alpha.test"
    user = make_member(Tenant.objects.get(slug="alpha"), email, "admin")
    yield user
    user.delete()


def test_member_logs_into_their_workspace(strata_server, page, alpha_admin, screenshot):
    page.goto(url(strata_server, "alpha.localhost"))
    expect(page).to_have_url(url(strata_server, "alpha.localhost", "/accounts/login/?next=/"))
    expect(page.get_by_test_id("tenant-name")).to_have_text("Alpha Co")
    screenshot("login")
    page.get_by_label("Email").fill(alpha_admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("user-email")).to_contain_text(alpha_admin.email)
    expect(page.get_by_test_id("user-email")).to_contain_text("Admin")
    screenshot("workspace-overview")


def test_wrong_password_keeps_you_on_the_login_page(strata_server, page, alpha_admin):
    page.goto(url(strata_server, "alpha.localhost", "/accounts/login/"))
    page.get_by_label("Email").fill(alpha_admin.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("not correct")).to_be_visible()


@pytest.fixture
def cleanup_signup(committed_db):
    created: list[str] = []
    yield created
    for slug in created:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is not None:
            User.objects.filter(memberships__tenant=tenant).delete()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            tenant.delete(force_drop=False)


def test_company_signs_up_and_lands_in_its_new_workspace(strata_server, page, cleanup_signup, screenshot):
    slug = f"delta-{uuid.uuid4().hex[:6]}"
    cleanup_signup.append(slug)
    page.goto(url(strata_server, "localhost", "/signup/"))
    page.get_by_label("Company name").fill("Delta Dynamics")
    # Alpine fills the subdomain from the company name until the user edits it.
    expect(page.get_by_label("Subdomain")).to_have_value("delta-dynamics")
    page.get_by_label("Subdomain").fill(slug)
    page.get_by_label("Your work email").fill(f"owner@{slug}.test")
    page.get_by_label("Password").fill("a-long-secret-42")
    screenshot("signup")
    page.get_by_role("button", name="Create workspace").click()

    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert page.url == url(strata_server, f"{slug}.localhost", "/")
    expect(page.get_by_test_id("tenant-name")).to_have_text("Delta Dynamics")


def test_signup_with_a_reserved_subdomain_says_why(strata_server, page):
    page.goto(url(strata_server, "localhost", "/signup/"))
    page.get_by_label("Company name").fill("Admin Corp")
    page.get_by_label("Subdomain").fill("admin")
    page.get_by_label("Your work email").fill("x@admin-corp.test")
    page.get_by_label("Password").fill("a-long-secret-42")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_test_id("slug-error")).to_contain_text("reserved")
