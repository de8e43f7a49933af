"""/api/v1/segments/… (included by config/urls_api.py). Fixed names (overlap, schema,
preview) come before `<key>/`; services refuse them as keys (RESERVED_KEYS)."""

from django.urls import path

from segments.api import views

urlpatterns = [
    path("", views.SegmentListView.as_view(), name="api_segments"),
    path("overlap/", views.SegmentOverlapView.as_view(), name="api_segments_overlap"),
    path("schema/", views.SegmentSchemaView.as_view(), name="api_segments_schema"),
    path("preview/", views.SegmentPreviewNewView.as_view(), name="api_segments_preview"),
    path("<slug:key>/", views.SegmentDetailView.as_view(), name="api_segment_detail"),
    path("<slug:key>/preview/", views.SegmentPreviewView.as_view(), name="api_segment_preview"),
    path("<slug:key>/evaluate/", views.SegmentEvaluateView.as_view(), name="api_segment_evaluate"),
    path("<slug:key>/members/", views.SegmentMembersView.as_view(), name="api_segment_members"),
    path("<slug:key>/members/export/", views.SegmentMembersExportView.as_view(), name="api_segment_members_export"),
    path("<slug:key>/members/upload/", views.SegmentMembersUploadView.as_view(), name="api_segment_members_upload"),
    path("<slug:key>/changes/", views.SegmentChangesView.as_view(), name="api_segment_changes"),
    path("<slug:key>/versions/", views.SegmentVersionsView.as_view(), name="api_segment_versions"),
    path("<slug:key>/versions/diff/", views.SegmentVersionDiffView.as_view(), name="api_segment_versions_diff"),
    path("<slug:key>/explain/<int:customer_id>/", views.SegmentExplainView.as_view(), name="api_segment_explain"),
    path("<slug:key>/snapshot/", views.SegmentSnapshotView.as_view(), name="api_segment_snapshot"),
]
