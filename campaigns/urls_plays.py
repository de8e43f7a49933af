"""The activation plan pages (HTML), included at /plays/ by config/urls_tenant.py: plays,
the plan of one segment (its plays across departments) and of one department (its plays,
KPIs against targets, trend)."""

from django.urls import path  # noqa: F401  (routes are added with their views)

urlpatterns: list = []
