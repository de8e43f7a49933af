"""/api/v1/segments/… (included by config/urls_api.py). Fixed names (overlap, schema,
preview) come before `<key>/`; services refuse them as keys (RESERVED_KEYS)."""

from django.urls import path

from segments.api.views import across, explain, history, members, segments

urlpatterns = [
    path("", segments.SegmentListView.as_view(), name="api_segments"),
    path("overlap/", across.SegmentOverlapView.as_view(), name="api_segments_overlap"),
    path("schema/", across.SegmentSchemaView.as_view(), name="api_segments_schema"),
    path("preview/", segments.SegmentPreviewNewView.as_view(), name="api_segments_preview"),
    path("<slug:key>/", segments.SegmentDetailView.as_view(), name="api_segment_detail"),
    path("<slug:key>/preview/", segments.SegmentPreviewView.as_view(), name="api_segment_preview"),
    path("<slug:key>/evaluate/", segments.SegmentEvaluateView.as_view(), name="api_segment_evaluate"),
    path("<slug:key>/members/", members.SegmentMembersView.as_view(), name="api_segment_members"),
    path("<slug:key>/members/export/", members.SegmentMembersExportView.as_view(), name="api_segment_members_export"),
    path("<slug:key>/members/upload/", members.SegmentMembersUploadView.as_view(), name="api_segment_members_upload"),
    path("<slug:key>/changes/", members.SegmentChangesView.as_view(), name="api_segment_changes"),
    path("<slug:key>/versions/", history.SegmentVersionsView.as_view(), name="api_segment_versions"),
    path("<slug:key>/versions/diff/", history.SegmentVersionDiffView.as_view(), name="api_segment_versions_diff"),
    path("<slug:key>/explain/<int:customer_id>/", explain.SegmentExplainView.as_view(), name="api_segment_explain"),
    path("<slug:key>/snapshot/", segments.SegmentSnapshotView.as_view(), name="api_segment_snapshot"),
]
