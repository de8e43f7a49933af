"""Who may do what (house rule 14): the permission catalogue, the built-in roles, what an
API key's scope can grant, and the checks services make (ensure_permitted,
ensure_same_tenant).

Permissions are named strings; a role is a set of them. Pages declare the permission they
need with common.pages.requires, API views with `required_permissions` (enforced by
tenants.api.permissions.TenantPermission), and services check it again, so a permission
cannot be skipped by calling a service from a new interface.
"""

from __future__ import annotations

from common.actors import Actor
from common.errors import Code, Forbidden, NotFound

CATALOGUE: dict[str, str] = {
    "members.manage": "Invite people, change their role or department, remove them",
    "roles.manage": "Create and edit custom roles",
    "settings.modify": "Change workspace settings and departments",
    "audit.view": "Browse and export the audit log",
    "api_keys.manage": "Create and revoke API keys; rotate the tracking write key",
    "customers.view": "See customer profiles and events",
    "customers.view_pii": "See personal data (email, name, birth date) of customers",
    "customers.edit": "Create, change and delete customer profiles",
    "data.import": "Upload CSV files and send data through the API",
    "data.export": "Export customers, members of segments and reports",
    "segments.view": "See segments and their members",
    "segments.edit": "Create, change and delete segments",
    "campaigns.view": "See campaigns and their results",
    "campaigns.edit": "Create and change campaigns",
    "campaigns.launch": "Launch, pause and stop campaigns",
    "reports.view": "See reports and dashboards",
    "insights.run": "Run clustering and train the churn, LTV and lookalike models",
}

_READ = {"customers.view", "segments.view", "campaigns.view", "reports.view"}

ANALYST_DESCRIPTION = "Reads reports, builds segments from them, exports data, runs the models of Insights"

BUILTIN_ROLES: dict[str, tuple[str, str, frozenset[str]]] = {
    # key: (name, description, permissions)
    "admin": ("Admin", "Everything, including members, roles, keys and settings", frozenset(CATALOGUE)),
    "marketer": (
        "Marketer",
        "Builds segments, creates and launches campaigns",
        frozenset(_READ | {"customers.view_pii", "segments.edit", "campaigns.edit", "campaigns.launch", "data.import"}),
    ),
    "analyst": (
        "Analyst",
        ANALYST_DESCRIPTION,
        # Segments too: an analyst turns a report into a segment (a funnel's drop-offs, a
        # cluster), ranks them on the targeting board and reviews them; campaigns stay with
        # marketers, and rules over personal data still need customers.view_pii.
        frozenset(_READ | {"data.export", "insights.run", "segments.edit"}),
    ),
    "viewer": ("Viewer", "Reads everything except personal data", frozenset(_READ)),
}

# What an API key's scope can ever grant; a key never exceeds its creator's role either.
SCOPES: dict[str, frozenset[str]] = {
    "read": frozenset(_READ | {"customers.view_pii", "data.export"}),
    "write": frozenset({"customers.edit", "segments.edit", "campaigns.edit", "data.import", "insights.run"}),
    "ingest": frozenset({"data.import"}),
    # Separate from write, so a script that launches campaigns or changes the trait registry
    # and workspace settings says so when its key is made.
    "launch": frozenset({"campaigns.launch"}),
    "settings": frozenset({"settings.modify"}),
}


def unknown_permissions(permissions) -> list[str]:
    return sorted(set(permissions) - set(CATALOGUE))



def ensure_permitted(actor: Actor | None, permission: str) -> None:
    if actor is None or not actor.has(permission):
        raise Forbidden.single(
            path="", code=Code.PERMISSION_DENIED,
            message=f"This needs the “{permission}” permission.",
        )


def ensure_same_tenant(actor: Actor, *objects) -> None:
    """Objects named by id in a request must belong to the actor's tenant: else 404,
    so ids from another tenant reveal nothing."""
    for obj in objects:
        if obj is not None and obj.tenant_id != actor.tenant_id:
            raise NotFound.single(path="", code=Code.NOT_FOUND, message="Not found.")
