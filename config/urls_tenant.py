"""A tenant's subdomain: the app, its API (/api/v1/) and tracking endpoints (/v1/)."""

from django.urls import include, path

from ops.views import healthz
from tenants import views
from tenants.workspace import workspace_home

urlpatterns = [
    path("", workspace_home, name="workspace_home"),
    path("auth/handoff/", views.handoff, name="tenant_handoff"),
    path("accounts/", include("allauth.urls")),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("config.urls_api")),
]
