"""The segment pages (HTML + htmx partials), included at /segments/ by config/urls_tenant.py.
Fixed routes come before `<slug:key>/`; `-/…` cannot be a key (keys start with a letter or
digit). TRICKY: `new/` shadows a segment keyed "new" — its detail is reachable only by API."""

from django.urls import path

from segments.views import actions, detail, directory
from segments.views import builder as views_builder
from segments.views import overlap as views_overlap

urlpatterns = [
    path("", directory.segments_list, name="segments_list"),
    path("-/table/", directory.segments_table, name="segments_table"),
    path("-/preview/", views_builder.segments_preview, name="segments_preview"),
    path("-/values/", views_builder.segments_values, name="segments_values"),
    path("-/overlap/", views_overlap.segments_overlap, name="segments_overlap"),
    path("new/", views_builder.segments_new, name="segments_new"),
    path("<slug:key>/", detail.segments_detail, name="segments_detail"),
    path("<slug:key>/edit/", views_builder.segments_edit, name="segments_edit"),
    path("<slug:key>/members/", detail.segments_members, name="segments_members"),
    path("<slug:key>/changes/", detail.segments_changes, name="segments_changes"),
    path("<slug:key>/explain/<int:customer_id>/", detail.segments_explain, name="segments_explain"),
    path("<slug:key>/diff/", detail.segments_diff, name="segments_diff"),
    path("<slug:key>/evaluate/", actions.segments_evaluate, name="segments_evaluate"),
    path("<slug:key>/snapshot/", actions.segments_snapshot, name="segments_snapshot"),
    path("<slug:key>/status/", actions.segments_status, name="segments_status"),
    path("<slug:key>/delete/", actions.segments_delete, name="segments_delete"),
    path("<slug:key>/static/", actions.segments_static, name="segments_static"),
    path("<slug:key>/upload/", actions.segments_upload, name="segments_upload"),
]
