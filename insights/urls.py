"""The Insights pages (insights/views.py)."""

from django.urls import include, path

from insights import views
from insights.reports.views import journeys

urlpatterns = [
    path("", views.insights_home, name="insights_home"),
    path("features/", views.feature_catalogue, name="insights_features"),
    path("clustering/", views.clustering_run_start, name="insights_clustering_start"),
    path("clustering/<int:version>/", views.clustering_run_detail, name="insights_clustering_run"),
    path("clustering/<int:version>/clusters/<int:index>/segment/", views.cluster_segment_create,
         name="insights_cluster_segment"),
    path("churn/", views.churn_model_latest, name="insights_churn_latest"),
    path("churn/train/", views.churn_model_train, name="insights_churn_train"),
    path("churn/<int:version>/", views.churn_model_detail, name="insights_churn_model"),
    path("churn/<int:version>/segment/", views.high_risk_segment_create, name="insights_high_risk_segment"),
    path("lookalikes/", views.lookalike_run_start, name="insights_lookalike_start"),
    path("lookalikes/<int:version>/", views.lookalike_run_detail, name="insights_lookalike_run"),
    path("lookalikes/<int:version>/segment/", views.lookalike_segment, name="insights_lookalike_segment"),
    path("reports/", include("insights.reports.urls")),
    path("personas/", journeys.persona_gallery, name="insights_personas"),
    path("customers/<str:external_id>/scores/", views.customer_scores, name="insights_customer_scores"),
]
