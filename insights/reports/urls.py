"""The report pages (insights/reports/views.py), under /insights/reports/."""

from django.urls import path

from insights.reports import views

urlpatterns = [
    path("kpis/", views.kpi_report, name="insights_kpis"),
    path("kpis.csv", views.kpi_report_csv, name="insights_kpis_csv"),
    path("kpis/segments/<str:key>/", views.segment_kpi_panel, name="insights_segment_kpis"),
]
