import pytest
from django.db import connection
from hypothesis import given, settings as hsettings, strategies as st

from common.errors import DomainError
from tenants.models import Domain, Tenant, TenantMembership, User
from tenants.services import schema_name_for, slug_format_problems, slug_problems, tenant_create


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [name])
        return cursor.fetchone() is not None


def tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_tenant_create_makes_schema_domain_and_first_admin(db):
    """A new tenant gets its own schema with every tenant table, a subdomain, and an admin."""
    tenant = tenant_create(slug="newco", name="NewCo", admin_email="Founder@NewCo.test", admin_password="x" * 12)

    assert tenant.schema_name == "t_newco"
    assert schema_exists("t_newco")
    assert {"customers_customer", "customers_event", "ops_heartbeat"} <= tables_in("t_newco")
    assert "tenants_tenant" not in tables_in("t_newco")  # shared tables stay public
    assert Domain.objects.get(tenant=tenant).domain == "newco.localhost"
    membership = TenantMembership.objects.get(tenant=tenant)
    assert membership.role.key == "admin" and membership.is_admin
    assert membership.user.email == "founder@newco.test"
    assert membership.user.check_password("x" * 12)


def test_tenant_create_links_an_existing_user(db):
    """A person who already has an account becomes admin of the new tenant too."""
    tenant_create(slug="first-co", name="First", admin_email="pat@example.test", admin_password="x" * 12)
    tenant_create(slug="second-co", name="Second", admin_email="PAT@example.test")
    assert User.objects.filter(email="pat@example.test").count() == 1
    assert TenantMembership.objects.filter(user__email="pat@example.test").count() == 2


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("", "required"),
        ("ab", "too_short"),
        ("a" * 33, "too_long"),
        ("Acme", "uppercase"),
        ("acme_co", "invalid"),
        ("-acme", "invalid"),
        ("acme-", "invalid"),
        ("ac--me", "invalid"),
        ("9lives", "invalid"),
        ("acmé", "invalid"),
        ("www", "reserved"),
        ("api", "reserved"),
        ("admin", "reserved"),
        ("alpha", "taken"),
    ],
)
def test_bad_slugs_are_refused_with_a_code(db, slug, code):
    """Reserved, malformed and taken subdomains get a coded error on path `slug`."""
    with pytest.raises(DomainError) as caught:
        tenant_create(slug=slug, name="X", admin_email="x@example.test")
    assert [(p.path, p.code) for p in caught.value.problems] == [("slug", code)]


def test_every_problem_is_reported_at_once(db):
    with pytest.raises(DomainError) as caught:
        tenant_create(slug="WWW", name="", admin_email="not-an-email")
    assert {(p.path, p.code) for p in caught.value.problems} == {
        ("slug", "uppercase"), ("name", "required"), ("admin_email", "invalid_email"),
    }


def test_failure_part_way_leaves_nothing_behind(db):
    """If provisioning fails after the schema exists, no schema, tenant or user remains."""
    other = Tenant.objects.get(slug="beta")
    Domain.objects.create(domain="doomed.localhost", tenant=other, is_primary=False)

    with pytest.raises(Exception):
        tenant_create(slug="doomed", name="Doomed", admin_email="ghost@doomed.test")

    assert not Tenant.objects.filter(slug="doomed").exists()
    assert not User.objects.filter(email="ghost@doomed.test").exists()
    assert not schema_exists("t_doomed")


@hsettings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_slug_format_never_crashes_and_accepts_only_dns_safe_names(slug):
    """Any string is either a DNS label that maps to a schema name, or refused with a code."""
    problems = slug_format_problems(slug)
    if problems:
        assert len(problems) == 1 and problems[0].path == "slug" and problems[0].code
    else:
        assert slug.isascii() and slug == slug.lower() and 3 <= len(slug) <= 32
        assert slug[0].isalpha() and slug[-1].isalnum() and "--" not in slug
        assert schema_name_for(slug).replace("_", "").isalnum()


def test_slug_problems_checks_taken_last(db):
    assert [p.code for p in slug_problems("alpha")] == ["taken"]
    assert slug_problems("fresh-name") == []
