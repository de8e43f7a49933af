"""/api/v1/plays/, /api/v1/campaigns/, /api/v1/webhooks/ (included by config/urls_api.py)."""

from django.urls import path

from campaigns.api import views

urlpatterns = [
    path("plays/", views.PlayListView.as_view(), name="api_plays"),
    path("plays/<int:pk>/", views.PlayDetailView.as_view(), name="api_play_detail"),
    path("plays/<int:pk>/kpi/", views.PlayKpiView.as_view(), name="api_play_kpi"),
    path("campaigns/", views.CampaignListView.as_view(), name="api_campaigns"),
    path("campaigns/<int:pk>/", views.CampaignDetailView.as_view(), name="api_campaign_detail"),
    path("campaigns/<int:pk>/launch/", views.CampaignLaunchView.as_view(), name="api_campaign_launch"),
    path("campaigns/<int:pk>/pause/", views.CampaignPauseView.as_view(), name="api_campaign_pause"),
    path("campaigns/<int:pk>/cancel/", views.CampaignCancelView.as_view(), name="api_campaign_cancel"),
    path("campaigns/<int:pk>/preview/", views.CampaignPreviewView.as_view(), name="api_campaign_preview"),
    path("campaigns/<int:pk>/results/", views.CampaignResultsView.as_view(), name="api_campaign_results"),
    path("campaigns/<int:pk>/sends/", views.CampaignSendsView.as_view(), name="api_campaign_sends"),
    path("campaigns/<int:pk>/audience.csv", views.CampaignAudienceView.as_view(), name="api_campaign_audience"),
    path("webhooks/", views.WebhookListView.as_view(), name="api_webhooks"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="api_webhook_detail"),
    path("webhooks/<int:pk>/test/", views.WebhookTestView.as_view(), name="api_webhook_test"),
    path("webhooks/<int:pk>/deliveries/", views.WebhookDeliveriesView.as_view(), name="api_webhook_deliveries"),
]
