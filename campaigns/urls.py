"""The campaign pages (HTML + htmx partials), included at /campaigns/ by config/urls_tenant.py:
campaigns (list, editor, preview, launch/pause/cancel, results) and webhook destinations."""

from django.urls import path  # noqa: F401  (routes are added with their views)

urlpatterns: list = []
