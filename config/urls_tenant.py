"""A tenant's subdomain: the app, its API (/api/v1/) and tracking endpoints (/v1/)."""

from django.urls import include, path, re_path

from apikeys import views as apikey_views
from audit import views as audit_views
from campaigns.views import public as campaign_views
from common.api import api_not_found
from customers.views import home as customer_home
from customers.views import profiles as customer_views
from customers.views import metrics as views_metrics
from customers.views import retention as views_retention
from campaigns.views import maturity as maturity_views
from campaigns.views import review as review_views
from campaigns.views import targeting as targeting_views
from customers.views import surveys as views_surveys
from customers.views import traits as views_traits
from ops.views import healthz, task_run_view
from segments.views import settings as segment_settings_views
from tenants.views import invitations as views_invitations
from tenants.views import public as views
from tenants.views import settings as views_settings

# The settings area (HTML, for admins); each view declares its permission with @requires.
settings_patterns = [
    path("settings/", views_settings.settings_index, name="settings_index"),
    path("settings/workspace/", views_settings.workspace, name="settings_workspace"),
    path("settings/members/", views_settings.members, name="settings_members"),
    path("settings/members/invite/", views_invitations.invite, name="settings_member_invite"),
    path("settings/members/<int:pk>/", views_settings.member_edit, name="settings_member_edit"),
    path("settings/members/<int:pk>/remove/", views_settings.member_remove_view, name="settings_member_remove"),
    path("settings/invitations/<int:pk>/revoke/", views_invitations.invitation_revoke_view,
         name="settings_invitation_revoke"),
    path("settings/roles/", views_settings.roles, name="settings_roles"),
    path("settings/roles/new/", views_settings.role_new, name="settings_role_new"),
    path("settings/roles/<int:pk>/", views_settings.role_edit, name="settings_role_edit"),
    path("settings/roles/<int:pk>/delete/", views_settings.role_delete_view, name="settings_role_delete"),
    path("settings/departments/", views_settings.departments, name="settings_departments"),
    path("settings/departments/<int:pk>/", views_settings.department_rename_view, name="settings_department_rename"),
    path("settings/departments/<int:pk>/delete/", views_settings.department_delete_view,
         name="settings_department_delete"),
    path("settings/metrics/", views_metrics.settings_metrics, name="settings_metrics"),
    path("settings/data/", views_retention.settings_data, name="settings_data"),
    path("settings/traits/", views_traits.settings_traits, name="settings_traits"),
    path("settings/personal-properties/", views_traits.settings_personal_properties,
         name="settings_personal_properties"),
    path("settings/traits/<str:key>/", views_traits.settings_trait_edit, name="settings_trait_edit"),
    path("settings/surveys/", views_surveys.settings_surveys, name="settings_surveys"),
    path("settings/surveys/<str:key>/", views_surveys.settings_survey_edit, name="settings_survey_edit"),
    path("settings/segments/", segment_settings_views.settings_segments, name="settings_segments"),
    path("settings/api-keys/", apikey_views.api_keys_view, name="settings_api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", apikey_views.api_key_revoke_view, name="settings_api_key_revoke"),
    path("settings/write-key/rotate/", apikey_views.write_key_rotate_view, name="settings_write_key_rotate"),
    path("settings/lookup-key/rotate/", apikey_views.lookup_key_rotate_view, name="settings_lookup_key_rotate"),
    path("settings/identity-secret/rotate/", apikey_views.identity_secret_rotate_view,
         name="settings_identity_secret_rotate"),
    path("settings/identity-verification/", apikey_views.identity_verification_view,
         name="settings_identity_verification"),
    path("settings/audit/", audit_views.audit, name="settings_audit"),
    path("settings/audit/export.csv", audit_views.audit_export, name="settings_audit_export"),
]

# The customer pages (HTML + htmx partials). TRICKY: `customers/<str:external_id>/` matches
# any single segment, so fixed routes under customers/ (e.g. customers/imports/…) must come
# before `customer_patterns` in urlpatterns.
customer_patterns = [
    path("customers/", customer_views.customers_list, name="customers_list"),
    path("customers/-/table/", customer_views.customers_table, name="customers_table"),
    path("customers/<str:external_id>/", customer_views.customer_detail, name="customer_detail"),
    path("customers/<str:external_id>/events/", customer_views.customer_events, name="customer_events"),
    path("customers/<str:external_id>/export/", customer_views.customer_export_view, name="customer_export"),
    path("customers/<str:external_id>/anonymise/", customer_views.customer_anonymise_view, name="customer_anonymise"),
    path("customers/<str:external_id>/delete/", customer_views.customer_delete_view, name="customer_delete"),
]

urlpatterns = [
    path("", customer_home.workspace_home, name="workspace_home"),
    path("auth/handoff/", views.handoff, name="tenant_handoff"),
    path("accounts/", include("allauth.urls")),
    path("healthz", healthz, name="healthz"),
    # Open to anyone with the link (see tenants.middleware.OPEN_PREFIXES); the emailed
    # link is build_absolute_uri("/invitations/") + token.
    path("invitations/<str:token>/", views_invitations.invitation_accept_view, name="invitation_accept"),
    # Open too (OPEN_PREFIXES): an email's signed unsubscribe link (campaigns.sending.unsubscribe_url).
    path("unsubscribe/<str:token>/", campaign_views.unsubscribe_view, name="campaign_unsubscribe"),
    path("tasks/<int:pk>/", task_run_view, name="task_run"),
    path("metrics/", views_metrics.metrics_overview, name="metrics_overview"),
    path("metrics/refresh/", views_metrics.metrics_refresh_view, name="metrics_refresh"),
    # The review queue (campaigns/views/review.py): "review" is a reserved segment key.
    path("maturity/", maturity_views.maturity_page, name="workspace_maturity"),
    path("targeting/", targeting_views.targeting_page, name="targeting_board"),
    path("targeting/save/", targeting_views.targeting_save, name="targeting_save"),
    path("segments/review/", review_views.review_page, name="segments_review"),
    path("segments/review/notice/", review_views.review_notice, name="segments_review_notice"),
    path("segments/review/<slug:key>/<str:decision>/", review_views.review_decide, name="segments_review_decide"),
    path("segments/", include("segments.urls")),  # the segment pages (segments/views/)
    path("insights/", include("insights.urls")),  # clustering, churn model, features (insights/views.py)
    path("plays/", include("campaigns.plays.urls")),  # the activation plan (campaigns/plays/views.py)
    path("campaigns/", include("campaigns.urls")),  # campaign and webhook pages (campaigns/views/)
    *settings_patterns,
    path("exports/", include("segments.urls_exports")),  # warehouse exports (Parquet)
    path("customers/imports/", include("customers.imports.urls")),  # CSV import (before customer_patterns)
    *customer_patterns,  # keep after every other customers/… route (see above)
    path("api/v1/", include("config.urls_api")),
    path("v1/", include("config.urls_tracking")),
    # Last: an address under /api/ or /v1/ that names no route answers the API's JSON error.
    re_path(r"^api/", api_not_found, name="api_not_found"),
    re_path(r"^v1/", api_not_found, name="tracking_not_found"),
]
