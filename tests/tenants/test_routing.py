"""Host routing and the gate in front of tenant pages."""

from django.test import Client

from tenants.services import tenant_set_status
from tests.conftest import host_of, make_member


def test_public_site_serves_landing_signup_and_login(public_client):
    for path in ("/", "/signup/", "/accounts/login/"):
        assert public_client.get(path).status_code == 200, path


def test_unknown_subdomain_is_a_404_page_not_a_500(db):
    response = Client(HTTP_HOST="nobody-here.localhost").get("/")
    assert response.status_code == 404
    assert b"Nothing here" in response.content


def test_tenant_login_page_is_open(tenant_client):
    response = tenant_client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Alpha Co" in response.content  # the page says which workspace you log into


def test_anonymous_visitor_is_sent_to_login(tenant_client):
    response = tenant_client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


def test_member_sees_the_workspace_overview(member_client):
    response = member_client.get("/")
    assert response.status_code == 200
    assert b"Overview" in response.content and b"Alpha Co" in response.content


def test_member_of_another_tenant_gets_404(tenant, other_tenant):
    """A logged-in member of alpha cannot tell that beta exists."""
    user = make_member(tenant, "only-alpha@alpha.test")
    client = Client(HTTP_HOST=host_of(other_tenant))
    client.force_login(user)
    assert client.get("/").status_code == 404


def test_suspended_tenant_shows_a_clear_page(member_client, tenant):
    tenant_set_status(tenant=tenant, status="suspended")
    response = member_client.get("/")
    assert response.status_code == 403
    assert b"Alpha Co is suspended" in response.content
    # even the login page says so, rather than letting people log in to nothing
    assert Client(HTTP_HOST=host_of(tenant)).get("/accounts/login/").status_code == 403


def test_picker_lists_only_my_active_workspaces(tenant, other_tenant):
    user = make_member(tenant, "picker@alpha.test")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    response = client.get("/workspaces/")
    assert b"Alpha Co" in response.content and b"Beta Ltd" not in response.content
    assert client.get(f"/workspaces/{other_tenant.slug}/enter/").status_code == 404
    assert client.get("/workspaces/no-such-slug/enter/").status_code == 404


def test_picker_requires_login(public_client):
    assert public_client.get("/workspaces/").status_code == 302


def test_the_workspace_switcher_lists_the_other_workspaces_of_the_person(tenant, other_tenant):
    """A member of alpha and beta sees beta in alpha's switcher (through the public hand-off)
    and not alpha itself; a member of alpha only is told there is no other."""
    from django.test import Client

    from tests.conftest import host_of, make_member

    both = make_member(tenant, "both@example.test", "viewer")
    make_member(other_tenant, "both@example.test", "viewer")
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(both)
    menu = client.get("/").content.decode().split('data-testid="workspace-menu"')[1].split("</div>")[0]
    assert "Beta Ltd" in menu and "/workspaces/beta/enter/" in menu and "Alpha Co" not in menu
    solo = Client(HTTP_HOST=host_of(tenant))
    solo.force_login(make_member(tenant, "solo@example.test", "viewer"))
    assert "You belong to no other workspace" in solo.get("/").content.decode()
