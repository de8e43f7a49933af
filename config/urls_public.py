"""The public site on the bare domain: landing, company sign-up, login, tenant picker."""

from django.contrib import admin
from django.urls import include, path

from ops.views import healthz, metrics
from tenants.views import public as views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("workspaces/", views.tenant_picker, name="tenant_picker"),
    path("workspaces/<slug:slug>/enter/", views.tenant_enter, name="tenant_enter"),
    path("accounts/", include("allauth.urls")),
    path("healthz", healthz, name="healthz"),
    # Prometheus' scrape, on the bare domain only: a tenant host's /metrics/ is its metrics page.
    path("metrics", metrics, name="prometheus_metrics"),
    path("admin/", admin.site.urls),
]
