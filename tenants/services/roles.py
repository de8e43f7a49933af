"""Custom roles, departments and workspace settings, per tenant; audited."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from common.actors import Actor
from common.errors import Code, Conflict, DomainError, Problem, TenantCode
from tenants.models import Department, Role, Tenant
from tenants.permissions import CATALOGUE
from tenants.permissions import ensure_permitted, ensure_same_tenant
from tenants.services.team_changes import changes_between, team_changed


def _role_problems(name: str, permissions: list[str]) -> list[Problem]:
    problems = []
    if not name:
        problems.append(Problem(path="name", code=Code.REQUIRED, message="Give the role a name."))
    elif len(name) > 100:
        problems.append(Problem(path="name", code=Code.TOO_LONG, message="Use at most 100 characters."))
    for index, permission in enumerate(permissions):
        if permission not in CATALOGUE:
            problems.append(Problem(path=f"permissions[{index}]", code=TenantCode.UNKNOWN_PERMISSION,
                                    message=f"“{permission}” is not a permission."))
    return problems


def _duplicate_name(name: str) -> DomainError:
    return Conflict.single(path="name", code=TenantCode.DUPLICATE_NAME,
                           message=f"A role or department called “{name}” already exists.")


@transaction.atomic
def role_create(*, actor: Actor, name: str, permissions: list[str], description: str = "") -> Role:
    ensure_permitted(actor, "roles.manage")
    name, given = (name or "").strip(), list(permissions or [])
    problems = _role_problems(name, given)  # paths index what the caller sent
    if problems:
        raise DomainError(problems=problems)
    permissions = sorted(set(given))
    key = _free_key(actor.tenant_id, slugify(name)[:50] or "role")
    try:
        with transaction.atomic():
            role = Role.objects.create(tenant_id=actor.tenant_id, key=key, name=name,
                                       description=description.strip()[:300], permissions=permissions)
    except IntegrityError:
        raise _duplicate_name(name) from None
    team_changed(actor=actor, action="role.created", target=role, changes={"permissions": [None, permissions]})
    return role


def _free_key(tenant_id: int, base: str) -> str:
    taken = set(Role.objects.filter(tenant_id=tenant_id, key__startswith=base).values_list("key", flat=True))
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key


@transaction.atomic
def role_update(*, actor: Actor, role: Role, name: str, permissions: list[str],
                description: str = "") -> Role:
    ensure_permitted(actor, "roles.manage")
    ensure_same_tenant(actor, role)
    if role.is_builtin:
        raise Conflict.single(path="role", code=TenantCode.BUILTIN_ROLE,
                              message="Built-in roles cannot be changed; create a custom role instead.")
    name, given = (name or "").strip(), list(permissions or [])
    problems = _role_problems(name, given)
    if problems:
        raise DomainError(problems=problems)
    permissions = sorted(set(given))
    before = {"name": role.name, "permissions": sorted(role.permissions), "description": role.description}
    role.name, role.permissions, role.description = name, permissions, description.strip()[:300]
    try:
        with transaction.atomic():
            role.save(update_fields=["name", "permissions", "description", "updated_at"])
    except IntegrityError:
        raise _duplicate_name(name) from None
    after = {"name": role.name, "permissions": role.permissions, "description": role.description}
    team_changed(actor=actor, action="role.updated", target=role, changes=changes_between(before, after))
    return role


@transaction.atomic
def role_delete(*, actor: Actor, role: Role) -> None:
    ensure_permitted(actor, "roles.manage")
    ensure_same_tenant(actor, role)
    if role.is_builtin:
        raise Conflict.single(path="role", code=TenantCode.BUILTIN_ROLE, message="Built-in roles cannot be deleted.")
    in_use = role.memberships.count()
    if in_use:
        raise Conflict.single(path="role", code=TenantCode.ROLE_IN_USE,
                              message=f"{in_use} member(s) have this role; give them another role first.")
    team_changed(actor=actor, action="role.deleted", target=role, changes={"permissions": [role.permissions, None]})
    role.delete()


@transaction.atomic
def department_create(*, actor: Actor, name: str) -> Department:
    ensure_permitted(actor, "settings.modify")
    name = _department_name(name)
    try:
        with transaction.atomic():
            department = Department.objects.create(tenant_id=actor.tenant_id, name=name)
    except IntegrityError:
        raise _duplicate_name(name) from None
    team_changed(actor=actor, action="department.created", target=department, changes={"name": [None, name]})
    return department


@transaction.atomic
def department_rename(*, actor: Actor, department: Department, name: str) -> Department:
    ensure_permitted(actor, "settings.modify")
    ensure_same_tenant(actor, department)
    name, before = _department_name(name), department.name
    department.name = name
    try:
        with transaction.atomic():
            department.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise _duplicate_name(name) from None
    team_changed(actor=actor, action="department.renamed", target=department, changes={"name": [before, name]})
    return department


@transaction.atomic
def department_delete(*, actor: Actor, department: Department) -> None:
    ensure_permitted(actor, "settings.modify")
    ensure_same_tenant(actor, department)
    team_changed(actor=actor, action="department.deleted", target=department,
                  changes={"name": [department.name, None], "members": [department.members.count(), 0]})
    department.delete()  # members keep their seat with no department (SET NULL)


@transaction.atomic
def workspace_update(*, actor: Actor, name: str) -> "Tenant":
    """Rename the workspace (its subdomain stays: links and SDKs depend on it)."""
    ensure_permitted(actor, "settings.modify")
    name = (name or "").strip()
    if not name:
        raise DomainError.single(path="name", code=Code.REQUIRED, message="Give the workspace a name.")
    if len(name) > 200:
        raise DomainError.single(path="name", code=Code.TOO_LONG, message="Use at most 200 characters.")
    tenant = Tenant.objects.select_for_update().get(pk=actor.tenant_id)
    before = tenant.name
    if name != before:
        tenant.name = name
        tenant.save(update_fields=["name", "updated_at"])
        team_changed(actor=actor, action="workspace.updated", target=tenant, changes={"name": [before, name]})
    return tenant


def _department_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError.single(path="name", code=Code.REQUIRED, message="Give the department a name.")
    if len(name) > 100:
        raise DomainError.single(path="name", code=Code.TOO_LONG, message="Use at most 100 characters.")
    return name
