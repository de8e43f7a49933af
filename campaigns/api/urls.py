"""/api/v1/plays/, /api/v1/campaigns/, /api/v1/webhooks/ (included by config/urls_api.py)."""

from django.urls import path

from campaigns.api.views import campaigns, plays, webhooks

urlpatterns = [
    path("plays/", plays.PlayListView.as_view(), name="api_plays"),
    path("plays/<int:pk>/", plays.PlayDetailView.as_view(), name="api_play_detail"),
    path("plays/<int:pk>/kpi/", plays.PlayKpiView.as_view(), name="api_play_kpi"),
    path("campaigns/", campaigns.CampaignListView.as_view(), name="api_campaigns"),
    path("campaigns/<int:pk>/", campaigns.CampaignDetailView.as_view(), name="api_campaign_detail"),
    path("campaigns/<int:pk>/launch/", campaigns.CampaignLaunchView.as_view(), name="api_campaign_launch"),
    path("campaigns/<int:pk>/pause/", campaigns.CampaignPauseView.as_view(), name="api_campaign_pause"),
    path("campaigns/<int:pk>/cancel/", campaigns.CampaignCancelView.as_view(), name="api_campaign_cancel"),
    path("campaigns/<int:pk>/preview/", campaigns.CampaignPreviewView.as_view(), name="api_campaign_preview"),
    path("campaigns/<int:pk>/results/", campaigns.CampaignResultsView.as_view(), name="api_campaign_results"),
    path("campaigns/<int:pk>/sends/", campaigns.CampaignSendsView.as_view(), name="api_campaign_sends"),
    path("campaigns/<int:pk>/audience.csv", campaigns.CampaignAudienceView.as_view(), name="api_campaign_audience"),
    path("webhooks/", webhooks.WebhookListView.as_view(), name="api_webhooks"),
    path("webhooks/<int:pk>/", webhooks.WebhookDetailView.as_view(), name="api_webhook_detail"),
    path("webhooks/<int:pk>/test/", webhooks.WebhookTestView.as_view(), name="api_webhook_test"),
    path("webhooks/<int:pk>/deliveries/", webhooks.WebhookDeliveriesView.as_view(), name="api_webhook_deliveries"),
]
