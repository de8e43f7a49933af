"""The segment pages (HTML + htmx partials), included at /segments/ by config/urls_tenant.py.
Fixed routes come before `<slug:key>/`; `-/…` cannot be a key (keys start with a letter or
digit). TRICKY: `new/` shadows a segment keyed "new" — its detail is reachable only by API."""

from django.urls import path

from segments.views import builder as views_builder
from segments.views import overlap as views_overlap
from segments.views import pages as views

urlpatterns = [
    path("", views.segments_list, name="segments_list"),
    path("-/table/", views.segments_table, name="segments_table"),
    path("-/preview/", views_builder.segments_preview, name="segments_preview"),
    path("-/values/", views_builder.segments_values, name="segments_values"),
    path("-/overlap/", views_overlap.segments_overlap, name="segments_overlap"),
    path("new/", views_builder.segments_new, name="segments_new"),
    path("<slug:key>/", views.segments_detail, name="segments_detail"),
    path("<slug:key>/edit/", views_builder.segments_edit, name="segments_edit"),
    path("<slug:key>/members/", views.segments_members, name="segments_members"),
    path("<slug:key>/explain/<int:customer_id>/", views.segments_explain, name="segments_explain"),
    path("<slug:key>/diff/", views.segments_diff, name="segments_diff"),
    path("<slug:key>/evaluate/", views.segments_evaluate, name="segments_evaluate"),
    path("<slug:key>/snapshot/", views.segments_snapshot, name="segments_snapshot"),
    path("<slug:key>/status/", views.segments_status, name="segments_status"),
    path("<slug:key>/delete/", views.segments_delete, name="segments_delete"),
    path("<slug:key>/static/", views.segments_static, name="segments_static"),
    path("<slug:key>/upload/", views.segments_upload, name="segments_upload"),
]
