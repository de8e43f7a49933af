"""REST API v1 on a tenant host: /api/v1/… (session + CSRF for the UI, Bearer keys for scripts)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apikeys.api.views import ApiKeyDetailView, ApiKeyListView
from audit.api.views import AuditEventListView
from tenants.api.views import MeView, MemberListView
from tenants.authz import ANY_MEMBER


class SchemaView(SpectacularAPIView):
    required_permissions = {"GET": ANY_MEMBER}


class DocsView(SpectacularSwaggerView):
    required_permissions = {"GET": ANY_MEMBER}


urlpatterns = [
    path("me/", MeView.as_view(), name="api_me"),
    path("members/", MemberListView.as_view(), name="api_members"),
    path("audit-events/", AuditEventListView.as_view(), name="api_audit_events"),
    path("api-keys/", ApiKeyListView.as_view(), name="api_keys"),
    path("api-keys/<int:pk>/", ApiKeyDetailView.as_view(), name="api_key_detail"),
    path("schema/", SchemaView.as_view(), name="api_schema"),
    path("docs/", DocsView.as_view(url_name="api_schema"), name="api_docs"),
]
