"""Creating tenants, their domains, built-in roles, departments and first admin."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django_tenants.utils import get_public_schema_name

from common.errors import Code, DomainError, Problem, TenantCode
from tenants.models import Department, Domain, Role, Tenant, TenantMembership, User
from tenants.permissions import BUILTIN_ROLES
from tenants.template import schema_from_template, template_ensure

DEFAULT_DEPARTMENTS = ("Marketing", "Sales", "Product", "Customer Success", "Support")

SLUG_MIN, SLUG_MAX = 3, 32
_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


def slug_problems(slug: str) -> list[Problem]:
    """Every reason `slug` cannot name a new tenant (empty when it can)."""
    problems = slug_format_problems(slug)
    if not problems and Tenant.objects.filter(slug=slug).exists():
        problems = [Problem(path="slug", code=TenantCode.TAKEN, message=f"“{slug}” is already taken.")]
    return problems


def slug_format_problems(slug: str) -> list[Problem]:
    """The pure part of slug validation: format and reserved names (no query)."""

    def problem(code: Code | TenantCode, message: str) -> list[Problem]:
        return [Problem(path="slug", code=code, message=message)]

    if not slug:
        return problem(Code.REQUIRED, "Choose a subdomain.")
    if len(slug) < SLUG_MIN:
        return problem(Code.TOO_SHORT, f"Use at least {SLUG_MIN} characters.")
    if len(slug) > SLUG_MAX:
        return problem(Code.TOO_LONG, f"Use at most {SLUG_MAX} characters.")
    if slug != slug.lower():
        return problem(TenantCode.UPPERCASE, "Use lower-case letters only.")
    if not _SLUG_RE.match(slug) or "--" in slug:
        return problem(
            Code.INVALID,
            "Use lower-case letters, digits and single hyphens; start with a letter and "
            "end with a letter or digit.",
        )
    if slug in settings.RESERVED_SLUGS:
        return problem(Code.RESERVED, f"“{slug}” is reserved; choose another subdomain.")
    return []


def schema_name_for(slug: str) -> str:
    # A prefix keeps tenant schemas apart from public, pg_* and information_schema.
    return "t_" + slug.replace("-", "_")


def tenant_domain_for(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def _email_problems(email: str, path: str) -> list[Problem]:
    try:
        validate_email(email)
    except ValidationError:
        return [Problem(path=path, code=Code.INVALID_EMAIL, message="Enter a valid email address.")]
    return []


def tenant_create(
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password: str | None = None,
    admin_name: str = "",
) -> Tenant:
    """Create a tenant, its schema (a copy of the migrated template: tenants/template.py),
    its domain and its first admin.

    All or nothing: PostgreSQL DDL is transactional, so a failure part-way (a race on the
    slug, a bad copy) leaves no schema, row or user behind. The template is brought up to
    the code's migrations first, in a transaction of its own.
    """
    slug = (slug or "").strip()
    name = (name or "").strip()
    admin_email = (admin_email or "").strip().lower()
    problems = slug_problems(slug)
    if not name:
        problems.append(Problem(path="name", code=Code.REQUIRED, message="Enter the company name."))
    elif len(name) > 200:
        problems.append(Problem(path="name", code=Code.TOO_LONG, message="Use at most 200 characters."))
    problems += _email_problems(admin_email, "admin_email")
    if problems:
        raise DomainError(problems=problems)

    template_ensure()
    with transaction.atomic():
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(schema_name=schema_name_for(slug), slug=slug, name=name)
        except IntegrityError:
            raise DomainError.single(path="slug", code=TenantCode.TAKEN,
                                     message=f"“{slug}” is already taken.") from None
        schema_from_template(schema_name=tenant.schema_name)
        Domain.objects.create(domain=tenant_domain_for(slug), tenant=tenant, is_primary=True)
        roles_seed(tenant=tenant)
        departments_seed(tenant=tenant)
        user = user_get_or_create(email=admin_email, password=admin_password, full_name=admin_name)
        membership_set(user=user, tenant=tenant, role="admin")
    return tenant


def roles_seed(*, tenant: Tenant) -> None:
    for key, (name, description, _permissions) in BUILTIN_ROLES.items():
        Role.objects.update_or_create(
            tenant=tenant, key=key, defaults={"name": name, "description": description, "is_builtin": True}
        )


def departments_seed(*, tenant: Tenant) -> None:
    for name in DEFAULT_DEPARTMENTS:
        if not Department.objects.filter(tenant=tenant, name__iexact=name).exists():
            Department.objects.create(tenant=tenant, name=name)


def user_get_or_create(*, email: str, password: str | None = None, full_name: str = "") -> User:
    """Return the user with this email, creating them when new (password unusable if None)."""
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, full_name=full_name)
    return user


def user_set_password(*, user: User, password: str) -> User:
    user.set_password(password)
    user.save(update_fields=["password", "updated_at"])
    return user


def membership_set(*, user: User, tenant: Tenant, role: str, department: Department | None = None) -> TenantMembership:
    """Provisioning and seeding only (no actor, no audit): people joining through the
    product go through invitation_accept."""
    membership, _ = TenantMembership.objects.update_or_create(
        user=user, tenant=tenant,
        defaults={"role": Role.objects.get(tenant=tenant, key=role), "department": department},
    )
    return membership


def tenant_set_status(*, tenant: Tenant, status: str) -> Tenant:
    if status not in Tenant.Status.values:
        raise DomainError.single(path="status", code=Code.INVALID_CHOICE, message=f"Unknown status {status!r}.")
    tenant.status = status
    tenant.save(update_fields=["status", "updated_at"])
    return tenant


def public_tenant_ensure() -> Tenant:
    """The row django-tenants routes the public site through; idempotent."""
    public, _ = Tenant.objects.get_or_create(
        schema_name=get_public_schema_name(),
        defaults={"slug": "public", "name": "Strata"},
    )
    for index, host in enumerate([settings.BASE_DOMAIN, *settings.PUBLIC_EXTRA_DOMAINS]):
        Domain.objects.get_or_create(domain=host, defaults={"tenant": public, "is_primary": index == 0})
    return public
