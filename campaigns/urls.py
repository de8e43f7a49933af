"""The campaign pages (HTML + htmx partials), included at /campaigns/ by config/urls_tenant.py:
campaigns (list, editor, preview, launch/pause/cancel, results) and webhook destinations.
Every name starts with `campaigns_` (the main navigation highlights the section by it)."""

from django.urls import path

from campaigns.views import campaigns as views_campaigns
from campaigns.views import results as views_results
from campaigns.views import webhooks as views_webhooks

urlpatterns = [
    path("", views_campaigns.campaigns_list, name="campaigns_list"),
    path("new/", views_campaigns.campaigns_new, name="campaigns_new"),
    path("-/preview/", views_campaigns.campaigns_preview, name="campaigns_preview"),
    path("<int:pk>/", views_campaigns.campaigns_detail, name="campaigns_detail"),
    path("<int:pk>/edit/", views_campaigns.campaigns_edit, name="campaigns_edit"),
    path("<int:pk>/launch/", views_campaigns.campaigns_launch, name="campaigns_launch"),
    path("<int:pk>/pause/", views_campaigns.campaigns_pause, name="campaigns_pause"),
    path("<int:pk>/cancel/", views_campaigns.campaigns_cancel, name="campaigns_cancel"),
    path("<int:pk>/results/", views_results.campaigns_results, name="campaigns_results"),
    path("-/webhooks/", views_webhooks.campaigns_webhooks, name="campaigns_webhooks"),
    path("-/webhooks/new/", views_webhooks.campaigns_webhook_new, name="campaigns_webhook_new"),
    path("-/webhooks/<int:pk>/", views_webhooks.campaigns_webhook_detail, name="campaigns_webhook_detail"),
    path("-/webhooks/<int:pk>/edit/", views_webhooks.campaigns_webhook_edit, name="campaigns_webhook_edit"),
    path("-/webhooks/<int:pk>/test/", views_webhooks.campaigns_webhook_test, name="campaigns_webhook_test"),
]
