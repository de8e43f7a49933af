"""/exports/… pages (included by config.urls_tenant)."""

from django.urls import path

from segments.views import warehouse as views

urlpatterns = [
    path("", views.exports_list_view, name="exports_list"),
    path("start/", views.exports_start, name="exports_start"),
    path("schedule/", views.exports_schedule, name="exports_schedule"),
    path("<int:pk>/", views.exports_detail, name="exports_detail"),
    path("<int:pk>/retry/", views.exports_retry, name="exports_retry"),
    path("<int:pk>/manifest.json", views.exports_manifest, name="exports_manifest"),
    path("<int:pk>/files/<int:file_id>/", views.exports_file, name="exports_file"),
]
