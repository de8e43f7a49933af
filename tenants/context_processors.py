from dataclasses import dataclass

from django.conf import settings

from tenants.models import Tenant, TenantMembership
from tenants.selectors import public_url


@dataclass(frozen=True)
class SettingsPage:
    key: str
    label: str
    permission: str
    url_name: str


# The settings area's pages, in sidebar order; each is shown only to roles that hold its
# permission (the views enforce the same permission with @requires).
SETTINGS_PAGES = (
    SettingsPage("workspace", "Workspace", "settings.modify", "settings_workspace"),
    SettingsPage("members", "Members", "members.manage", "settings_members"),
    SettingsPage("roles", "Roles", "roles.manage", "settings_roles"),
    SettingsPage("departments", "Departments", "settings.modify", "settings_departments"),
    SettingsPage("metrics", "Metrics", "settings.modify", "settings_metrics"),
    SettingsPage("data", "Data retention", "settings.modify", "settings_data"),
    SettingsPage("traits", "Traits", "settings.modify", "settings_traits"),
    SettingsPage("surveys", "Surveys", "settings.modify", "settings_surveys"),
    SettingsPage("segments", "Segments", "settings.modify", "settings_segments"),
    SettingsPage("api_keys", "API keys", "api_keys.manage", "settings_api_keys"),
    SettingsPage("audit", "Audit log", "audit.view", "settings_audit"),
)


def settings_pages_for(membership) -> list[SettingsPage]:
    if membership is None:
        return []
    return [page for page in SETTINGS_PAGES if membership.has(page.permission)]


def other_workspaces(request, current) -> list[dict]:
    """The signed-in person's other active workspaces, for the user menu's switcher."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []

    memberships = (TenantMembership.objects.filter(user=user, tenant__status=Tenant.Status.ACTIVE)
                   .exclude(tenant=current).select_related("tenant").order_by("tenant__name"))
    return [{"name": m.tenant.name, "url": public_url(f"/workspaces/{m.tenant.slug}/enter/")} for m in memberships]


def _public_workspaces_url() -> str:
    return public_url("/workspaces/")


def tenant(request):
    current = getattr(request, "tenant", None)
    membership = getattr(request, "membership", None)
    return {
        "current_tenant": None if current is None or current.is_public else current,
        "current_membership": membership,
        "other_workspaces": other_workspaces(request, current) if membership is not None else [],
        "public_workspaces_url": _public_workspaces_url(),
        "settings_pages": settings_pages_for(membership),
        "base_domain": settings.BASE_DOMAIN,
        "public_port": settings.PUBLIC_PORT,
    }
