"""Writes on tenants, users, members, roles and departments (house rule 1)."""

from tenants.services.members import (  # noqa: F401
    INVITATION_DAYS, invitation_accept, invitation_for_token, invitation_revoke, member_invite,
    member_remove, member_update,
)
from tenants.services.provisioning import (  # noqa: F401
    DEFAULT_DEPARTMENTS, SLUG_MAX, SLUG_MIN, departments_seed, membership_set, public_tenant_ensure,
    roles_seed, schema_name_for, slug_format_problems, slug_problems, tenant_create, tenant_domain_for,
    tenant_set_status, user_get_or_create, user_set_password,
)
from tenants.services.roles import (  # noqa: F401
    department_create, department_delete, department_rename, role_create, role_delete, role_update, workspace_update,
)
