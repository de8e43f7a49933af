"""REST API v1 on a tenant host: /api/v1/… (session + CSRF for the UI, Bearer keys for scripts)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.settings import api_settings

from apikeys.api.views import ApiKeyDetailView, ApiKeyListView
from audit.api.views import AuditEventListView
from campaigns.api.views.campaigns import SegmentAudienceView
from common.pages import ANY_MEMBER
from customers.api.feedback import ConsentListView, SurveyResponseListView
from campaigns.api.views.maturity import MaturityView
from campaigns.api.views.review import ReviewDecisionView, ReviewQueueView
from campaigns.api.views.targeting import TargetingVersionsView, TargetingView
from customers.api.surveys import SurveyDetailView, SurveyListView
from customers.api.imports import ImportDetailView, ImportErrorsView, ImportListView
from customers.api.metrics import MetricsRefreshView, MetricsView
from customers.api.privacy import CustomerAnonymiseView, CustomerExportView
from customers.api.traits import TraitDetailView, TraitListView
from customers.api.views import CustomerDetailView, CustomerListView, EventListView
from ops.api import TaskRunView
from segments.api.views import warehouse as exports
from tenants.api.permissions import TenantPermission
from tenants.api.views import MeView, MemberListView


class SchemaView(SpectacularAPIView):
    # drf-spectacular serves with AllowAny by default: the schema of a workspace's API is
    # for its members (the permission matrix test holds this).
    permission_classes = [TenantPermission]
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    required_permissions = {"GET": ANY_MEMBER}


class DocsView(SpectacularSwaggerView):
    permission_classes = [TenantPermission]
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    required_permissions = {"GET": ANY_MEMBER}


urlpatterns = [
    path("me/", MeView.as_view(), name="api_me"),
    path("members/", MemberListView.as_view(), name="api_members"),
    path("audit-events/", AuditEventListView.as_view(), name="api_audit_events"),
    path("api-keys/", ApiKeyListView.as_view(), name="api_keys"),
    path("api-keys/<int:pk>/", ApiKeyDetailView.as_view(), name="api_key_detail"),
    path("customers/", CustomerListView.as_view(), name="api_customers"),
    path("customers/<str:external_id>/", CustomerDetailView.as_view(), name="api_customer_detail"),
    path("customers/<str:external_id>/export/", CustomerExportView.as_view(), name="api_customer_export"),
    path("customers/<str:external_id>/anonymise/", CustomerAnonymiseView.as_view(), name="api_customer_anonymise"),
    path("events/", EventListView.as_view(), name="api_events"),
    path("traits/", TraitListView.as_view(), name="api_traits"),
    path("traits/<str:key>/", TraitDetailView.as_view(), name="api_trait_detail"),
    path("imports/", ImportListView.as_view(), name="api_imports"),
    path("imports/<int:pk>/", ImportDetailView.as_view(), name="api_import_detail"),
    path("imports/<int:pk>/errors.csv", ImportErrorsView.as_view(), name="api_import_errors"),
    path("surveys/", SurveyListView.as_view(), name="api_surveys"),
    path("surveys/responses/", SurveyResponseListView.as_view(), name="api_survey_responses"),
    path("surveys/<str:key>/", SurveyDetailView.as_view(), name="api_survey"),
    path("consents/", ConsentListView.as_view(), name="api_consents"),
    path("metrics/", MetricsView.as_view(), name="api_metrics"),
    path("metrics/refresh/", MetricsRefreshView.as_view(), name="api_metrics_refresh"),
    path("tasks/<int:pk>/", TaskRunView.as_view(), name="api_task_run"),
    path("exports/", exports.ExportListView.as_view(), name="api_exports"),
    path("exports/schedule/", exports.ExportScheduleView.as_view(), name="api_export_schedule"),
    path("exports/<int:pk>/", exports.ExportDetailView.as_view(), name="api_export_detail"),
    path("exports/<int:pk>/manifest.json", exports.ExportManifestView.as_view(), name="api_export_manifest"),
    path("exports/<int:pk>/files/<int:file_id>/", exports.ExportFileView.as_view(), name="api_export_file"),
    # The ad-audience export of a segment (campaigns/api/views/campaigns.py), before the segments API's routes.
    path("segments/<slug:key>/audience.csv", SegmentAudienceView.as_view(), name="api_segment_audience"),
    path("maturity/", MaturityView.as_view(), name="api_maturity"),
    path("targeting/", TargetingView.as_view(), name="api_targeting"),
    path("targeting/versions/", TargetingVersionsView.as_view(), name="api_targeting_versions"),
    # The review queue (campaigns/api/views/review.py): "review" is a reserved segment key.
    path("segments/review/", ReviewQueueView.as_view(), name="api_segments_review"),
    path("segments/review/<slug:key>/", ReviewDecisionView.as_view(), name="api_segments_review_decide"),
    path("segments/", include("segments.api.urls")),
    path("insights/", include("insights.api.urls")),  # features, clustering runs, churn models, scores
    path("", include("campaigns.api.urls")),  # plays/, campaigns/, webhooks/
    path("schema/", SchemaView.as_view(), name="api_schema"),
    path("docs/", DocsView.as_view(url_name="api_schema"), name="api_docs"),
]
