from django.urls import path

from insights.api import views
from insights.reports import api as reports

urlpatterns = [
    path("features/", views.FeatureCatalogueView.as_view(), name="api_insights_features"),
    path("clustering-runs/", views.ClusteringRunListView.as_view(), name="api_clustering_runs"),
    path("clustering-runs/<int:version>/", views.ClusteringRunDetailView.as_view(), name="api_clustering_run"),
    path("clustering-runs/<int:version>/clusters/<int:index>/segment/", views.SegmentFromClusterView.as_view(),
         name="api_segment_from_cluster"),
    path("churn-models/", views.ChurnModelListView.as_view(), name="api_churn_models"),
    path("churn-models/<int:version>/", views.ChurnModelDetailView.as_view(), name="api_churn_model"),
    path("scores/", views.ScoreListView.as_view(), name="api_insights_scores"),
    path("lookalike-runs/", views.LookalikeRunListView.as_view(), name="api_lookalike_runs"),
    path("lookalike-runs/<int:version>/", views.LookalikeRunDetailView.as_view(), name="api_lookalike_run"),
    path("reports/kpis/", reports.SegmentKpiView.as_view(), name="api_segment_kpis"),
    path("reports/funnel/", reports.FunnelView.as_view(), name="api_funnel"),
    path("reports/retention/", reports.RetentionView.as_view(), name="api_retention"),
    path("reports/paths/", reports.PathsView.as_view(), name="api_paths"),
    path("reports/trends/", reports.TrendView.as_view(), name="api_trends"),
    path("journeys/<str:key>/", reports.JourneyView.as_view(), name="api_journey"),
    path("reports/funnel/dropoffs/", reports.FunnelDropoffView.as_view(), name="api_funnel_dropoffs"),
    path("lookalike-runs/<int:version>/segment/", views.LookalikeSegmentView.as_view(), name="api_lookalike_segment"),
]
