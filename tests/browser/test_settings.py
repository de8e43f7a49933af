"""The settings area in a real browser: inviting a colleague who then joins, the custom-role
editor, and a tour of the other pages (screenshots in .screenshots/).

Each test runs in a workspace of its own, dropped afterwards: the audit log is
append-only, so events committed here could not be cleaned out of a shared tenant.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apikeys.models import ApiKey
from customers.models import Survey
from tenants.models import Role, Tenant, TenantMembership, User
from tenants.services import tenant_create
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import PASSWORD


@pytest.fixture
def workspace(committed_db):
    """A fresh workspace with one admin; dropped with everything in it afterwards."""
    tag = uuid.uuid4().hex[:8]
    slug, admin_email = f"settings-{tag}", f"owner-{tag}@example.test"
    tenant = tenant_create(slug=slug, name="Settings Test Co", admin_email=admin_email, admin_password=PASSWORD)
    connection.set_schema_to_public()
    created_emails: list[str] = [admin_email]
    yield tenant, admin_email, created_emails
    # TRICKY: deleting a user nulls ApiKey.created_by, a table that exists only in the
    # tenant's schema: delete them with that schema on the search path.
    with schema_context(tenant.schema_name):
        User.objects.filter(email__in=created_emails).delete()
        User.objects.filter(memberships__tenant=tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).first().delete(force_drop=False)


def workspace_url(strata_server, tenant) -> str:
    return f"http://{tenant.slug}.localhost:{strata_server.port}"


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_admin_invites_a_marketer_who_creates_an_account_and_joins(strata_server, page, browser, workspace, screenshot):
    tenant, admin_email, created = workspace
    base = workspace_url(strata_server, tenant)
    invitee = f"new-{uuid.uuid4().hex[:8]}@example.test"
    created.append(invitee)
    mail.outbox.clear()

    log_in(page, base, admin_email)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Workspace", exact=True)).to_be_visible()
    page.get_by_role("link", name="Members", exact=True).click()
    expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    page.get_by_label("Email address").fill(invitee)
    page.get_by_label("Role", exact=True).select_option(label="Marketer")
    page.get_by_label("Department", exact=True).select_option(label="Marketing")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status").filter(has_text=f"Invitation sent to {invitee} as Marketer")).to_be_visible()
    expect(page.get_by_test_id("invitations-table")).to_contain_text(invitee)
    screenshot("settings-members")

    # The live server runs in this process with the locmem backend: its outbox is ours.
    [message] = [m for m in mail.outbox if m.to == [invitee]]
    link = re.search(r"http://\S+/invitations/\S+", message.body).group(0)
    assert link.startswith(f"{base}/invitations/")

    context = browser.new_context()  # the invitee: no session, no cookies
    try:
        guest = context.new_page()
        guest.goto(link)
        expect(guest.get_by_role("heading", name="Join Settings Test Co on Strata")).to_be_visible()
        expect(guest.get_by_test_id("invitation-role")).to_have_text("Marketer")
        guest.get_by_label("Full name").fill("Nora Newcomer")
        guest.get_by_label("Password").fill("a-long-secret-42")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        guest.screenshot(path=str(SCREENSHOTS / "invitation-accept.png"), full_page=True)
        guest.get_by_role("button", name="Create account and join").click()

        expect(guest.get_by_role("heading", name="Overview")).to_be_visible()
        expect(guest.get_by_text("Welcome to Settings Test Co! You joined as Marketer.")).to_be_visible()
        expect(guest.get_by_test_id("user-email")).to_contain_text(invitee)
        expect(guest.get_by_test_id("user-email")).to_contain_text("Marketer")
        expect(guest.get_by_role("link", name="Settings")).to_have_count(0)  # a marketer has no settings pages
        assert guest.goto(f"{base}/settings/members/").status == 403
        # The link works once.
        assert guest.goto(link).status == 410
        expect(guest.get_by_role("heading", name="This invitation was already used")).to_be_visible()
        guest.screenshot(path=str(SCREENSHOTS / "invitation-used.png"), full_page=True)
    finally:
        context.close()

    member = TenantMembership.objects.select_related("role", "department", "user").get(tenant=tenant, user__email=invitee)
    assert member.role.key == "marketer" and member.department.name == "Marketing"
    assert member.user.full_name == "Nora Newcomer"
    page.reload()
    expect(page.get_by_test_id("members-table")).to_contain_text("Nora Newcomer")
    expect(page.get_by_test_id("invitations-table")).to_have_count(0)

    # Inline edits go over htmx and come back as the row: saved, or with the reason why not.
    page.get_by_label(f"Department of {invitee}").select_option(label="Sales")
    page.get_by_role("button", name=f"Save changes for {invitee}").click()
    expect(page.locator(f"#member-{member.pk}").get_by_role("status")).to_have_text("Saved")
    page.get_by_label(f"Role of {admin_email}").select_option(label="Viewer")
    page.get_by_role("button", name=f"Save changes for {admin_email}").click()
    expect(page.get_by_role("alert").filter(has_text="A workspace needs at least one admin")).to_be_visible()
    expect(page.get_by_label(f"Role of {admin_email}")).to_have_value(str(Role.objects.get(tenant=tenant, key="admin").pk))  # the row shows what is stored
    screenshot("settings-members-inline")
    assert TenantMembership.objects.get(pk=member.pk).department.name == "Sales"


def test_admin_creates_a_custom_role_with_two_permissions(strata_server, page, workspace, screenshot):
    tenant, admin_email, _ = workspace
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.goto(f"{base}/settings/roles/")
    expect(page.get_by_role("heading", name="Roles", exact=True)).to_be_visible()
    screenshot("settings-roles-empty")
    page.get_by_role("link", name="New role").click()
    page.get_by_label("Name").fill("Campaign lead")
    page.get_by_label("Description").fill("Runs campaigns for their department")
    page.get_by_label("segments.view").check()
    page.get_by_label("campaigns.launch").check()
    screenshot("settings-role-editor")
    page.get_by_role("button", name="Create role").click()

    expect(page.get_by_role("status").filter(has_text="Role “Campaign lead” created.")).to_be_visible()
    table = page.get_by_test_id("custom-roles-table")
    expect(table).to_contain_text("Campaign lead")
    expect(table).to_contain_text("campaigns.launch")
    expect(table).to_contain_text("segments.view")
    screenshot("settings-roles")
    role = Role.objects.get(tenant=tenant, name="Campaign lead")
    assert role.permissions == ["campaigns.launch", "segments.view"] and not role.is_builtin

    # The editor reopens with the two boxes ticked; a duplicate name is refused in place.
    page.get_by_role("link", name="Edit Campaign lead").click()
    expect(page.get_by_label("campaigns.launch")).to_be_checked()
    expect(page.get_by_label("reports.view")).not_to_be_checked()
    page.goto(f"{base}/settings/roles/new/")
    page.get_by_label("Name").fill("campaign LEAD")
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_text("A role or department called “campaign LEAD” already exists.")).to_be_visible()


def test_admin_tours_departments_api_keys_and_the_audit_log(strata_server, page, workspace, screenshot):
    tenant, admin_email, _ = workspace
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)

    page.goto(f"{base}/settings/departments/")
    page.get_by_label("New department").fill("Growth")
    page.get_by_role("button", name="Add department").click()
    expect(page.get_by_test_id("departments-table")).to_contain_text("Growth")
    page.get_by_role("button", name="Rename Growth").click()
    page.get_by_label("New name for Growth").fill("Growth Lab")
    page.get_by_role("row", name=re.compile("Growth")).get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("departments-table")).to_contain_text("Growth Lab")
    page.get_by_role("button", name="Delete Support").click()
    screenshot("settings-departments")
    page.get_by_role("button", name="Confirm delete").click()
    expect(page.get_by_test_id("departments-table")).not_to_contain_text("Support")

    page.goto(f"{base}/settings/api-keys/")
    write_key = page.get_by_test_id("write-key").input_value()
    assert write_key.startswith("wk_")
    page.get_by_label("Name").fill("Nightly CRM sync")
    page.get_by_label("Ingest").check()
    page.get_by_role("button", name="Create key").click()
    plain = page.get_by_test_id("plain-key").input_value()
    assert re.fullmatch(r"sk_[0-9a-f]{10}_\S{30,}", plain)
    expect(page.get_by_text("It will not be shown again.")).to_be_visible()
    screenshot("settings-api-key-created")
    page.get_by_role("link", name="back to API keys").click()
    expect(page.get_by_test_id("api-keys-table")).to_contain_text("Nightly CRM sync")
    assert plain not in page.content()
    page.get_by_role("button", name="Rotate write key").click()
    screenshot("settings-api-keys")
    page.get_by_role("button", name="Rotate now").click()
    expect(page.get_by_text("New write key issued")).to_be_visible()
    assert page.get_by_test_id("write-key").input_value() != write_key

    secret = page.get_by_test_id("identity-secret")
    expect(secret).to_have_attribute("type", "password")
    page.get_by_role("button", name="Show").click()
    expect(secret).to_have_attribute("type", "text")
    assert secret.input_value().startswith("is_")
    page.get_by_text("How to sign a userId").click()
    expect(page.get_by_test_id("identity-snippet")).to_contain_text("hmac.new")
    page.get_by_test_id("identity-required").check()
    screenshot("settings-identity-verification")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("requests without a valid userHash are now refused")).to_be_visible()
    expect(page.get_by_test_id("identity-required")).to_be_checked()

    page.goto(f"{base}/settings/traits/")
    page.get_by_test_id("personal-properties").fill("ssn\npassport_number")
    page.get_by_role("button", name="Save", exact=True).last.click()
    expect(page.get_by_text("2 personal property keys saved.")).to_be_visible()
    expect(page.get_by_test_id("personal-properties")).to_have_value("passport_number\nssn\n")
    screenshot("settings-traits-personal-properties")
    with schema_context(tenant.schema_name):
        assert ApiKey.objects.get(name="Nightly CRM sync").scopes == ["ingest", "read"]

    page.goto(f"{base}/settings/audit/")
    table = page.get_by_test_id("audit-table")
    for action in ("department.created", "department.renamed", "department.deleted", "api_key.created",
                   "write_key.rotated"):
        expect(table).to_contain_text(action)
    expect(table).to_contain_text("Growth → Growth Lab")
    screenshot("settings-audit")
    # htmx filters as you choose: the URL follows, so the filtered view can be shared.
    page.get_by_label("Action").select_option("department.renamed")
    expect(page).to_have_url(re.compile(r"action=department\.renamed"))
    expect(page.get_by_test_id("audit-table").locator("tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.startswith(f"audit-{tenant.slug}-")
    rows = open(download.value.path()).read().splitlines()
    assert rows[0] == "at,actor_kind,actor,action,target_type,target_id,target,changes,ip,user_agent"
    assert len(rows) == 2 and "department.renamed" in rows[1]


def test_an_admin_defines_a_welcome_survey_with_a_choice(strata_server, page, workspace, screenshot):
    tenant, admin_email, _ = workspace
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.goto(f"{base}/settings/surveys/")
    expect(page.get_by_test_id("survey-list")).to_contain_text("Net Promoter Score")
    page.get_by_label("Key", exact=True).first.fill("welcome")
    page.get_by_label("Name").fill("Welcome survey")
    question = page.get_by_test_id("survey-question").first
    question.get_by_label("Key").fill("role")
    question.get_by_label("Question").fill("What is your role?")
    question.get_by_label("Answer").select_option("choice")
    for label in ("Developer", "Manager"):
        question.get_by_test_id("add-option").click()
        question.get_by_label("Label").last.fill(label)
    page.get_by_test_id("survey-save").click()
    expect(page.get_by_role("heading", name="Edit “Welcome survey”")).to_be_visible()
    expect(page.get_by_test_id("survey-list")).to_contain_text("role (choice)")
    with schema_context(tenant.schema_name):
        survey = Survey.objects.get(key="welcome")
        assert survey.questions[0]["options"] == [{"value": 1, "label": "Developer"}, {"value": 2, "label": "Manager"}]
    screenshot("settings-surveys")


def test_an_admin_shortens_retention_and_the_old_months_go(strata_server, page, workspace, screenshot):
    from datetime import UTC, datetime

    from customers import partitions
    from customers.ingest.message import Message
    from customers.ingest.store import ingest_messages

    tenant, admin_email, _ = workspace
    now = datetime.now(UTC)
    with schema_context(tenant.schema_name):
        ingest_messages(messages=[Message(type="track", user_id="old-1", event="login", timestamp=at, message_id=f"o{i}")
                                  for i, at in enumerate([datetime(2021, 6, 2, tzinfo=UTC), now])],
                        source="test", now=now)
        partitions.upkeep(now=now)
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.goto(f"{base}/settings/data/")
    storage = page.get_by_test_id("event-storage-table")
    expect(storage).to_contain_text("June 2021")
    page.get_by_label("Keep events for (months)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_event_months-error")).to_contain_text("1 to 120")
    page.get_by_label("Keep events for (months)").fill("12")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("retention-summary")).to_contain_text("Keeping events from")
    expect(storage).to_contain_text("removed at the next upkeep")
    screenshot("settings-data-retention")
    with schema_context(tenant.schema_name):
        partitions.upkeep(now=now)
    page.reload()
    expect(page.get_by_test_id("event-storage-table")).not_to_contain_text("June 2021")
    expect(page.get_by_test_id("retention-summary")).to_contain_text("removed events before")
