"""The report pages (insights/reports/views/), under /insights/reports/."""

from django.urls import path

from insights.reports.views import funnel, journeys, kpis, paths, retention, trends

urlpatterns = [
    path("kpis/", kpis.kpi_report, name="insights_kpis"),
    path("kpis.csv", kpis.kpi_report_csv, name="insights_kpis_csv"),
    path("kpis/segments/<str:key>/", kpis.segment_kpi_panel, name="insights_segment_kpis"),
    path("funnel/", funnel.funnel_page, name="insights_funnel"),
    path("funnel.csv", funnel.funnel_csv, name="insights_funnel_csv"),
    path("funnel/dropoffs/", funnel.funnel_dropoffs, name="insights_funnel_dropoffs"),
    path("retention/", retention.retention_page, name="insights_retention"),
    path("retention.csv", retention.retention_csv, name="insights_retention_csv"),
    path("paths/", paths.paths_page, name="insights_paths"),
    path("paths.csv", paths.paths_csv, name="insights_paths_csv"),
    path("trends/", trends.trends_page, name="insights_trends"),
    path("trends.csv", trends.trends_csv, name="insights_trends_csv"),
    path("trends/segments/<str:key>/", trends.segment_trend_panel, name="insights_segment_trends"),
    path("journeys/<str:key>/", journeys.segment_journey_panel, name="insights_segment_journey"),
    path("journeys/<str:key>/edit/", journeys.journey_edit, name="insights_journey_edit"),
]
