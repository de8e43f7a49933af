"""Every route × every built-in role × anonymous × a member of another tenant.

The table is explicit: for each route, which roles may use it and what they get. A route
missing from the table fails `test_every_route_is_in_the_table`, so a new page or endpoint
cannot ship without deciding who may use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from apikeys.services import api_key_create
from campaigns.models import WebhookEndpoint
from campaigns.plays.services import play_create
from campaigns.services.campaigns import campaign_cancel, campaign_create
from customers.imports.models import ImportJob
from customers.services import customer_upsert
from customers.models import TraitDefinition
from insights.models import ChurnModel, Cluster, ClusteringRun, CustomerScore, LookalikeRun
from ops.models import TaskRun
from ops.services import task_run_create
from segments.services import segment_create
from segments.warehouse.models import WarehouseExport, WarehouseExportFile
from segments.warehouse.services import warehouse_storage
from tenants.models import Department, Role
from tenants.services import member_invite, role_create
from tests.conftest import host_of, make_member, membership_of

ROLES = ("anonymous", "outsider", "viewer", "analyst", "marketer", "admin")
MEMBERS = frozenset({"viewer", "analyst", "marketer", "admin"})
ADMIN = frozenset({"admin"})
IMPORTERS = frozenset({"marketer", "admin"})  # data.import
SEGMENT_EDITORS = frozenset({"analyst", "marketer", "admin"})  # segments.edit
EXPORTERS = frozenset({"analyst", "admin"})  # data.export
CAMPAIGNERS = frozenset({"marketer", "admin"})  # campaigns.edit and campaigns.launch
RUNNERS = frozenset({"analyst", "admin"})  # insights.run


@dataclass(frozen=True)
class Route:
    allowed: frozenset[str]          # roles that pass the permission check
    ok: int = 200                    # what an allowed role gets
    method: str = "get"
    permission: str | None = None    # what the view declares (checked against the code)
    kwargs: str = ""                 # name of an object factory below
    data: dict = field(default_factory=dict)
    api: bool = False
    open: bool = False               # no login needed: everyone gets `ok`


TENANT_ROUTES: dict[str, Route] = {
    "workspace_home": Route(MEMBERS, permission="member"),
    "tenant_handoff": Route(frozenset(ROLES), ok=302, open=True),
    "healthz": Route(frozenset(ROLES), ok=503, open=True),  # no worker in this test
    "invitation_accept": Route(frozenset(ROLES), ok=404, open=True, kwargs="bad_token"),
    "task_run": Route(frozenset({"marketer", "admin"}), permission="member", kwargs="task_run"),
    "metrics_overview": Route(MEMBERS, permission="customers.view"),
    "metrics_refresh": Route(frozenset({"marketer", "admin"}), ok=302, method="post", permission="data.import"),
    "insights_home": Route(MEMBERS, permission="reports.view"),
    "insights_features": Route(MEMBERS, permission="reports.view"),
    "insights_clustering_start": Route(RUNNERS, ok=302, method="post", permission="insights.run"),
    "insights_clustering_run": Route(MEMBERS, permission="reports.view", kwargs="clustering_run"),
    # Sent without a key: refused by the service, answered with the run page again.
    "insights_cluster_segment": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit",
                                      kwargs="cluster"),
    "insights_churn_latest": Route(MEMBERS, ok=302, permission="reports.view"),
    "insights_churn_train": Route(RUNNERS, ok=302, method="post", permission="insights.run"),
    "insights_churn_model": Route(MEMBERS, permission="reports.view", kwargs="churn_model"),
    "insights_high_risk_segment": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit",
                                        kwargs="churn_model"),
    "insights_customer_scores": Route(MEMBERS, permission="customers.view", kwargs="customer"),
    "insights_kpis": Route(MEMBERS, permission="reports.view"),
    "insights_kpis_csv": Route(EXPORTERS, ok=400, permission="data.export"),  # no segments asked: coded 400
    "insights_segment_kpis": Route(MEMBERS, permission="reports.view", kwargs="segment"),
    "settings_surveys": Route(ADMIN, permission="settings.modify"),
    "settings_survey_edit": Route(ADMIN, ok=404, permission="settings.modify", kwargs="survey"),  # nps: built in
    "workspace_maturity": Route(MEMBERS, permission="reports.view"),
    "targeting_board": Route(MEMBERS, permission="segments.view"),
    "targeting_save": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit"),  # an empty board
    "segments_review": Route(MEMBERS, permission="segments.view"),
    "segments_review_notice": Route(MEMBERS, permission="segments.view"),
    # An unknown decision: refused by the view, answered with the queue again.
    "segments_review_decide": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit",
                                    kwargs="review_decision"),
    "insights_funnel": Route(MEMBERS, permission="reports.view"),
    "insights_retention": Route(MEMBERS, permission="reports.view"),
    "insights_paths": Route(MEMBERS, permission="reports.view"),
    "insights_trends": Route(MEMBERS, permission="reports.view"),
    "insights_segment_journey": Route(MEMBERS, permission="reports.view", kwargs="segment"),
    "insights_journey_edit": Route(SEGMENT_EDITORS, permission="segments.edit", kwargs="segment"),
    "insights_personas": Route(MEMBERS, permission="reports.view"),
    "insights_segment_trends": Route(MEMBERS, permission="reports.view", kwargs="segment"),
    "insights_trends_csv": Route(EXPORTERS, permission="data.export"),  # all customers, weekly
    "insights_paths_csv": Route(EXPORTERS, ok=400, permission="data.export"),  # no event asked: coded 400
    "insights_retention_csv": Route(EXPORTERS, permission="data.export"),  # the defaults: weekly, by sign-up
    "insights_funnel_csv": Route(EXPORTERS, ok=400, permission="data.export"),  # no steps asked: coded 400
    # No step sent: refused by the service, answered with the funnel page again.
    "insights_funnel_dropoffs": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit"),
    "insights_lookalike_start": Route(RUNNERS, ok=302, method="post", permission="insights.run"),
    "insights_lookalike_run": Route(MEMBERS, permission="reports.view", kwargs="lookalike_run"),
    "insights_lookalike_segment": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit",
                                        kwargs="lookalike_run"),
    "settings_metrics": Route(ADMIN, permission="settings.modify"),
    "settings_data": Route(ADMIN, permission="settings.modify"),
    "settings_traits": Route(ADMIN, permission="settings.modify"),
    "settings_segments": Route(ADMIN, permission="settings.modify"),
    "settings_trait_edit": Route(ADMIN, ok=302, method="post", permission="settings.modify", kwargs="trait"),
    "customers_list": Route(MEMBERS, permission="customers.view"),
    # CSV import (tests/customers/test_csv_import_http.py): "data.import".
    "exports_list": Route(EXPORTERS, permission="data.export"),
    "exports_start": Route(EXPORTERS, ok=400, method="post", permission="data.export"),  # no tables
    "exports_schedule": Route(EXPORTERS, ok=400, method="post", permission="data.export"),  # no interval
    "exports_detail": Route(EXPORTERS, permission="data.export", kwargs="export_done"),
    "exports_retry": Route(EXPORTERS, ok=409, method="post", permission="data.export", kwargs="export_done"),
    "exports_manifest": Route(EXPORTERS, permission="data.export", kwargs="export_done"),
    "exports_file": Route(EXPORTERS, permission="data.export", kwargs="export_file"),
    "imports_list": Route(IMPORTERS, permission="data.import"),
    "imports_upload": Route(IMPORTERS, ok=400, method="post", permission="data.import"),  # no file
    "imports_map": Route(IMPORTERS, permission="data.import", kwargs="import_job"),
    "imports_detail": Route(IMPORTERS, permission="data.import", kwargs="import_done"),
    "imports_summary": Route(IMPORTERS, permission="data.import", kwargs="import_done"),
    "imports_errors": Route(IMPORTERS, permission="data.import", kwargs="import_done"),
    "imports_retry": Route(IMPORTERS, ok=409, method="post", permission="data.import", kwargs="import_done"),
    "customers_table": Route(MEMBERS, permission="customers.view"),
    "customer_detail": Route(MEMBERS, permission="customers.view", kwargs="customer"),
    "customer_events": Route(MEMBERS, permission="customers.view", kwargs="customer"),
    # Export needs customers.view_pii too (checked by the service): analysts get 403.
    "customer_export": Route(ADMIN, method="post", permission="data.export", kwargs="customer"),
    "customer_anonymise": Route(ADMIN, ok=302, method="post", permission="customers.edit", kwargs="customer",
                                data={"confirm": "matrix-customer"}),
    "customer_delete": Route(ADMIN, ok=302, method="post", permission="customers.edit", kwargs="customer",
                             data={"confirm": "matrix-customer"}),
    "settings_index": Route(ADMIN, ok=302, permission=None),
    "settings_workspace": Route(ADMIN, permission="settings.modify"),
    "settings_members": Route(ADMIN, permission="members.manage"),
    "settings_member_invite": Route(ADMIN, ok=400, method="post", permission="members.manage"),
    "settings_member_edit": Route(ADMIN, ok=400, method="post", permission="members.manage", kwargs="member",
                                  data={"role": "not-a-number"}),
    "settings_member_remove": Route(ADMIN, ok=302, method="post", permission="members.manage", kwargs="member"),
    "settings_invitation_revoke": Route(ADMIN, ok=302, method="post", permission="members.manage", kwargs="invitation"),
    "settings_roles": Route(ADMIN, permission="roles.manage"),
    "settings_role_new": Route(ADMIN, permission="roles.manage"),
    "settings_role_edit": Route(ADMIN, permission="roles.manage", kwargs="role"),
    "settings_role_delete": Route(ADMIN, ok=302, method="post", permission="roles.manage", kwargs="role"),
    "settings_departments": Route(ADMIN, permission="settings.modify"),
    "settings_department_rename": Route(ADMIN, ok=400, method="post", permission="settings.modify", kwargs="department"),
    "settings_department_delete": Route(ADMIN, ok=302, method="post", permission="settings.modify", kwargs="department"),
    "settings_api_keys": Route(ADMIN, permission="api_keys.manage"),
    "settings_api_key_revoke": Route(ADMIN, ok=302, method="post", permission="api_keys.manage", kwargs="api_key"),
    "settings_write_key_rotate": Route(ADMIN, ok=302, method="post", permission="api_keys.manage"),
    "settings_lookup_key_rotate": Route(ADMIN, ok=302, method="post", permission="api_keys.manage"),
    "settings_personal_properties": Route(ADMIN, ok=302, method="post", permission="settings.modify",
                                          data={"keys": "ssn"}),
    "settings_identity_secret_rotate": Route(ADMIN, ok=302, method="post", permission="api_keys.manage"),
    "settings_identity_verification": Route(ADMIN, ok=302, method="post", permission="api_keys.manage",
                                            data={"required": "on"}),
    "settings_audit": Route(ADMIN, permission="audit.view"),
    "settings_audit_export": Route(ADMIN, permission="audit.view"),
    # Tracking: authenticated by the write key, not a session (tests/customers/test_tracking.py).
    **{f"tracking_{kind}": Route(frozenset(ROLES), ok=405, open=True)
       for kind in ("batch", "import", "track", "identify", "page", "screen", "group", "alias", "metrics",
                    "b", "t", "i", "p", "s", "g", "a")},
    # An address under /api/ or /v1/ that names no route: the API's JSON 404, for anyone.
    "api_not_found": Route(frozenset(ROLES), ok=404, open=True),
    "tracking_not_found": Route(frozenset(ROLES), ok=404, open=True),
    "api_me": Route(MEMBERS, api=True),
    "api_members": Route(ADMIN, api=True),
    "api_audit_events": Route(ADMIN, api=True),
    "api_keys": Route(ADMIN, api=True),
    "api_key_detail": Route(ADMIN, api=True, kwargs="api_key"),
    "api_customers": Route(MEMBERS, api=True),
    "api_customer_detail": Route(MEMBERS, api=True, kwargs="customer"),
    "api_customer_export": Route(ADMIN, api=True, kwargs="customer"),  # data.export + customers.view_pii
    "api_customer_anonymise": Route(MEMBERS, ok=405, api=True, kwargs="customer"),  # POST only (API_WRITES)
    "api_events": Route(MEMBERS, api=True),
    "api_exports": Route(EXPORTERS, api=True),
    "api_export_schedule": Route(EXPORTERS, api=True),
    "api_export_detail": Route(EXPORTERS, api=True, kwargs="export_done"),
    "api_export_manifest": Route(EXPORTERS, api=True, kwargs="export_done"),
    "api_export_file": Route(EXPORTERS, api=True, kwargs="export_file"),
    "api_imports": Route(IMPORTERS, api=True),
    "api_import_detail": Route(IMPORTERS, api=True, kwargs="import_done"),
    "api_import_errors": Route(IMPORTERS, api=True, kwargs="import_done"),
    "api_survey_responses": Route(MEMBERS, api=True),
    "api_consents": Route(MEMBERS, api=True),
    "api_metrics": Route(MEMBERS, api=True),
    "api_traits": Route(MEMBERS, api=True),
    "api_trait_detail": Route(MEMBERS, api=True, kwargs="trait"),
    "api_metrics_refresh": Route(frozenset({"marketer", "admin"}), ok=202, method="post", api=True),
    "api_task_run": Route(frozenset({"marketer", "admin"}), api=True, kwargs="task_run"),
    "api_schema": Route(MEMBERS, api=True),
    "api_docs": Route(MEMBERS, api=True),
    # Segments API (tests/segments/test_api.py): reads segments.view, writes segments.edit.
    "api_segments": Route(MEMBERS, api=True),
    "api_segments_overlap": Route(MEMBERS, api=True, data={"keys": "matrix-segment,matrix-static"}),
    "api_segments_schema": Route(MEMBERS, api=True),
    "api_segments_preview": Route(MEMBERS, ok=405, api=True),  # POST only (API_WRITES)
    "api_segment_detail": Route(MEMBERS, api=True, kwargs="segment"),
    "api_segment_preview": Route(MEMBERS, ok=405, api=True, kwargs="segment"),  # POST only
    "api_segment_evaluate": Route(MEMBERS, ok=405, api=True, kwargs="segment"),  # POST only
    "api_segment_members": Route(MEMBERS, api=True, kwargs="segment"),
    "api_segment_members_export": Route(EXPORTERS, api=True, kwargs="segment"),  # data.export
    "api_segment_members_upload": Route(MEMBERS, ok=405, api=True, kwargs="static_segment"),  # POST only
    "api_segment_changes": Route(MEMBERS, api=True, kwargs="segment"),
    "api_segment_versions": Route(MEMBERS, api=True, kwargs="segment"),
    "api_segment_versions_diff": Route(MEMBERS, api=True, kwargs="segment", data={"from": 1, "to": 1}),
    "api_segment_explain": Route(MEMBERS, api=True, kwargs="segment_customer"),
    "api_segment_snapshot": Route(MEMBERS, ok=405, api=True, kwargs="segment"),  # POST only
    # Segment pages (tests/segments/test_pages.py): reads segments.view, the builder and
    # every action segments.edit. Writes both editors send identically meet a refusal after
    # the permission check: a form body to the JSON preview (400), a taken snapshot key
    # (400), the reference guard on delete (409), no file (400).
    "segments_list": Route(MEMBERS, permission="segments.view"),
    "segments_table": Route(MEMBERS, permission="segments.view"),
    "segments_overlap": Route(MEMBERS, permission="segments.view"),
    "segments_detail": Route(MEMBERS, permission="segments.view", kwargs="segment"),
    "segments_members": Route(MEMBERS, permission="segments.view", kwargs="segment"),
    "segments_changes": Route(MEMBERS, permission="segments.view", kwargs="segment"),
    "segments_explain": Route(MEMBERS, permission="segments.view", kwargs="segment_customer"),
    "segments_diff": Route(MEMBERS, permission="segments.view", kwargs="segment", data={"from": 1, "to": 1}),
    "segments_new": Route(SEGMENT_EDITORS, permission="segments.edit"),
    "segments_edit": Route(SEGMENT_EDITORS, permission="segments.edit", kwargs="segment"),
    "segments_preview": Route(SEGMENT_EDITORS, ok=400, method="post", permission="segments.edit"),
    "segments_values": Route(SEGMENT_EDITORS, permission="segments.edit", data={"field": "plan"}),
    "segments_evaluate": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit", kwargs="segment"),
    "segments_snapshot": Route(SEGMENT_EDITORS, ok=400, method="post", permission="segments.edit", kwargs="segment",
                               data={"key": "matrix-segment", "name": "Matrix snapshot"}),
    # An unknown status: refused (400) once the permission check passed, for both editors.
    "segments_status": Route(SEGMENT_EDITORS, ok=400, method="post", permission="segments.edit", kwargs="segment",
                             data={"status": "nope"}),
    "segments_delete": Route(SEGMENT_EDITORS, ok=409, method="post", permission="segments.edit", kwargs="segment",
                             data={"confirm": "matrix-segment"}),
    "segments_static": Route(SEGMENT_EDITORS, ok=302, method="post", permission="segments.edit",
                             kwargs="static_segment", data={"add": "matrix-customer"}),
    "segments_upload": Route(SEGMENT_EDITORS, ok=400, method="post", permission="segments.edit",
                             kwargs="static_segment"),
    # Campaigns (tests/campaigns/): the unsubscribe link is open (its token is the
    # credential; a bad one is a 400 page), in-app messages need the write key (none: 401).
    "campaign_unsubscribe": Route(frozenset(ROLES), ok=400, open=True, kwargs="bad_token"),
    "tracking_in_app": Route(frozenset(ROLES), ok=401, open=True),
    # The membership lookup (tests/segments/test_lookup.py): a lookup key and a signed id, or
    # an API key; a session is not enough (401).
    "lookup_segments": Route(frozenset(ROLES), ok=401, open=True),
    "lookup_segment": Route(frozenset(ROLES), ok=401, open=True, kwargs="segment_key"),
    "lookup_user_segments": Route(frozenset(ROLES), ok=401, open=True, kwargs="lookup_user"),
    "lookup_user_segment": Route(frozenset(ROLES), ok=401, open=True, kwargs="lookup_user_segment"),
    # The activation plan (tests/campaigns/test_plays_pages.py): reads campaigns.view, the
    # editor campaigns.edit.
    "plays_list": Route(MEMBERS, permission="campaigns.view"),
    "plays_new": Route(CAMPAIGNERS, permission="campaigns.edit"),
    "plays_detail": Route(MEMBERS, permission="campaigns.view", kwargs="play"),
    "plays_edit": Route(CAMPAIGNERS, permission="campaigns.edit", kwargs="play"),
    "plays_segment": Route(MEMBERS, permission="campaigns.view", kwargs="segment"),
    "plays_department": Route(MEMBERS, permission="campaigns.view", kwargs="department"),
    # Campaign pages (tests/campaigns/test_pages.py, test_pages_webhooks.py): reads
    # campaigns.view, the editor and webhook writes campaigns.edit, transitions
    # campaigns.launch. Writes both editors send identically meet a refusal after the
    # permission check: transitions of a cancelled campaign (409), an empty webhook URL
    # (400); switching a webhook off is idempotent (302 for both).
    "campaigns_list": Route(MEMBERS, permission="campaigns.view"),
    "campaigns_new": Route(CAMPAIGNERS, permission="campaigns.edit"),
    "campaigns_edit": Route(CAMPAIGNERS, permission="campaigns.edit", kwargs="campaign"),
    "campaigns_detail": Route(MEMBERS, permission="campaigns.view", kwargs="campaign"),
    "campaigns_results": Route(MEMBERS, permission="campaigns.view", kwargs="campaign"),
    "campaigns_preview": Route(MEMBERS, method="post", permission="campaigns.view",
                               data={"channel": "email", "email_subject": "Hi {{ first_name }}", "email_body": "Hello"}),
    "campaigns_launch": Route(CAMPAIGNERS, ok=409, method="post", permission="campaigns.launch",
                              kwargs="campaign_done"),
    "campaigns_pause": Route(CAMPAIGNERS, ok=409, method="post", permission="campaigns.launch",
                             kwargs="campaign_done"),
    "campaigns_cancel": Route(CAMPAIGNERS, ok=409, method="post", permission="campaigns.launch",
                              kwargs="campaign_done"),
    "campaigns_webhooks": Route(MEMBERS, permission="campaigns.view"),
    "campaigns_webhook_new": Route(CAMPAIGNERS, ok=400, method="post", permission="campaigns.edit", data={"url": ""}),
    "campaigns_webhook_detail": Route(MEMBERS, permission="campaigns.view", kwargs="webhook"),
    "campaigns_webhook_edit": Route(CAMPAIGNERS, ok=302, method="post", permission="campaigns.edit", kwargs="webhook",
                                    data={"active": "0"}),
    # The endpoint's loopback URL is refused by the SSRF guard: the answer says so, nothing sent.
    "campaigns_webhook_test": Route(CAMPAIGNERS, method="post", permission="campaigns.edit", kwargs="webhook"),
    # Campaigns API (tests/campaigns/test_api.py): reads campaigns.view, writes
    # campaigns.edit, transitions campaigns.launch, audience exports data.export.
    "api_plays": Route(MEMBERS, api=True),
    "api_play_detail": Route(MEMBERS, api=True, kwargs="play"),
    "api_play_kpi": Route(MEMBERS, api=True, kwargs="play"),
    "api_campaigns": Route(MEMBERS, api=True),
    "api_campaign_detail": Route(MEMBERS, api=True, kwargs="campaign"),
    "api_campaign_launch": Route(MEMBERS, ok=405, api=True, kwargs="campaign"),  # POST only (API_WRITES)
    "api_campaign_pause": Route(MEMBERS, ok=405, api=True, kwargs="campaign"),  # POST only
    "api_campaign_cancel": Route(MEMBERS, ok=405, api=True, kwargs="campaign"),  # POST only
    "api_campaign_preview": Route(MEMBERS, ok=405, api=True, kwargs="campaign"),  # POST only
    "api_campaign_results": Route(MEMBERS, api=True, kwargs="campaign"),
    "api_campaign_sends": Route(MEMBERS, api=True, kwargs="campaign"),
    "api_campaign_audience": Route(EXPORTERS, api=True, kwargs="campaign"),  # data.export
    "api_segment_audience": Route(EXPORTERS, api=True, kwargs="segment"),  # data.export
    "api_webhooks": Route(MEMBERS, api=True),
    "api_webhook_detail": Route(MEMBERS, api=True, kwargs="webhook"),
    "api_insights_features": Route(MEMBERS, api=True),
    "api_clustering_runs": Route(MEMBERS, api=True),
    "api_clustering_run": Route(MEMBERS, api=True, kwargs="clustering_run"),
    "api_segment_from_cluster": Route(MEMBERS, ok=405, api=True, kwargs="cluster"),  # POST only
    "api_churn_models": Route(MEMBERS, api=True),
    "api_churn_model": Route(MEMBERS, api=True, kwargs="churn_model"),
    "api_insights_scores": Route(MEMBERS, api=True),
    "api_segment_kpis": Route(MEMBERS, ok=400, api=True),  # no segments asked: coded 400
    "api_funnel": Route(MEMBERS, ok=405, api=True),  # POST only
    "api_retention": Route(MEMBERS, api=True),
    "api_surveys": Route(MEMBERS, api=True),
    "api_segments_review": Route(MEMBERS, api=True),
    "api_maturity": Route(MEMBERS, api=True),
    "api_targeting": Route(MEMBERS, api=True),
    "api_targeting_versions": Route(MEMBERS, api=True),
    "api_segments_review_decide": Route(MEMBERS, ok=405, api=True, kwargs="segment"),  # POST only
    "api_survey": Route(MEMBERS, api=True, kwargs="survey"),
    "api_paths": Route(MEMBERS, ok=400, api=True),  # no event asked: coded 400
    "api_trends": Route(MEMBERS, api=True),
    "api_journey": Route(MEMBERS, api=True, kwargs="segment"),
    "api_funnel_dropoffs": Route(MEMBERS, ok=405, api=True),  # POST only
    "api_lookalike_runs": Route(MEMBERS, api=True),
    "api_lookalike_run": Route(MEMBERS, api=True, kwargs="lookalike_run"),
    "api_lookalike_segment": Route(MEMBERS, ok=405, api=True, kwargs="lookalike_run"),  # POST only
    "api_webhook_test": Route(MEMBERS, ok=405, api=True, kwargs="webhook"),  # POST only
    "api_webhook_deliveries": Route(MEMBERS, api=True, kwargs="webhook"),
}
# Other methods of API routes, where they need more than the GET does (JSON bodies).
API_WRITES: dict[tuple[str, str], Route] = {
    ("api_trait_detail", "patch"): Route(ADMIN, method="patch", api=True, kwargs="trait", data={"description": "x"}),
    ("api_customers", "post"): Route(ADMIN, ok=201, method="post", api=True, data={"external_id": "matrix-new"}),
    ("api_customer_detail", "patch"): Route(ADMIN, method="patch", api=True, kwargs="customer", data={"plan": "pro"}),
    ("api_customer_detail", "delete"): Route(ADMIN, ok=204, method="delete", api=True, kwargs="customer"),
    ("api_customer_anonymise", "post"): Route(ADMIN, method="post", api=True, kwargs="customer"),
    ("api_events", "post"): Route(frozenset({"marketer", "admin"}), method="post", api=True,
                                  data={"events": [{"external_id": "matrix-customer", "name": "matrix_checked"}]}),
    # Uploads are multipart: this JSON body is refused (415) once the permission check passed.
    ("api_imports", "post"): Route(IMPORTERS, ok=415, method="post", api=True, data={"kind": "customers"}),
    # Starting again with the same mapping hands the queued import back (202 for both roles).
    ("api_exports", "post"): Route(EXPORTERS, ok=400, method="post", api=True, data={"tables": []}),
    ("api_export_detail", "post"): Route(EXPORTERS, ok=409, method="post", api=True, kwargs="export_done"),
    ("api_export_schedule", "put"): Route(EXPORTERS, method="put", api=True,
                                          data={"enabled": False, "every": "day", "tables": ["segments"]}),
    ("api_import_detail", "post"): Route(IMPORTERS, ok=202, method="post", api=True, kwargs="import_job",
                                         data={"mapping": {"external_id": "external_id"}}),
    ("api_survey_responses", "post"): Route(frozenset({"marketer", "admin"}), method="post", api=True,
                                            data={"responses": [{"external_id": "matrix-customer", "survey": "nps", "score": 8}]}),
    ("api_consents", "post"): Route(frozenset({"marketer", "admin"}), method="post", api=True,
                                    data={"consents": [{"external_id": "matrix-customer", "channel": "email", "granted": True}]}),
    # Both editors write with the same body, so creations are sent invalid (400 once the
    # permission check passed) and the delete meets the reference guard (409).
    ("api_segments", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True,
                                    data={"key": "matrix-new", "name": ""}),
    ("api_segments_preview", "post"): Route(MEMBERS, method="post", api=True,
                                            data={"definition": {"version": 1, "match": "all", "conditions": [
                                                {"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}}),
    ("api_segment_detail", "patch"): Route(SEGMENT_EDITORS, method="patch", api=True, kwargs="segment",
                                           data={"name": "Matrix segment"}),
    ("api_segment_detail", "delete"): Route(SEGMENT_EDITORS, ok=409, method="delete", api=True, kwargs="segment"),
    ("api_segment_preview", "post"): Route(MEMBERS, method="post", api=True, kwargs="segment"),
    ("api_segment_evaluate", "post"): Route(SEGMENT_EDITORS, ok=202, method="post", api=True, kwargs="segment"),
    ("api_segment_members", "post"): Route(SEGMENT_EDITORS, method="post", api=True, kwargs="static_segment",
                                           data={"add": ["matrix-customer"]}),
    ("api_segment_members_upload", "post"): Route(SEGMENT_EDITORS, ok=415, method="post", api=True,
                                                  kwargs="static_segment"),  # multipart only
    ("api_segment_snapshot", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True, kwargs="segment",
                                            data={"key": "matrix-snapshot"}),
    # Creations are sent invalid (400 after the permission check); transitions go to a
    # cancelled campaign (409 for both roles: the first success would change the second's).
    ("api_plays", "post"): Route(CAMPAIGNERS, ok=400, method="post", api=True, data={"name": ""}),
    ("api_play_detail", "patch"): Route(CAMPAIGNERS, method="patch", api=True, kwargs="play",
                                        data={"name": "Matrix play"}),
    ("api_campaigns", "post"): Route(CAMPAIGNERS, ok=400, method="post", api=True, data={"name": ""}),
    ("api_campaign_detail", "patch"): Route(CAMPAIGNERS, method="patch", api=True, kwargs="campaign",
                                            data={"name": "Matrix campaign"}),
    ("api_campaign_launch", "post"): Route(CAMPAIGNERS, ok=409, method="post", api=True, kwargs="campaign_done"),
    ("api_campaign_pause", "post"): Route(CAMPAIGNERS, ok=409, method="post", api=True, kwargs="campaign_done"),
    ("api_campaign_cancel", "post"): Route(CAMPAIGNERS, ok=409, method="post", api=True, kwargs="campaign_done"),
    ("api_campaign_preview", "post"): Route(MEMBERS, method="post", api=True, kwargs="campaign"),  # a read
    ("api_webhooks", "post"): Route(CAMPAIGNERS, ok=400, method="post", api=True, data={"url": ""}),
    ("api_webhook_detail", "patch"): Route(CAMPAIGNERS, method="patch", api=True, kwargs="webhook",
                                           data={"active": False}),
    ("api_clustering_runs", "post"): Route(RUNNERS, ok=202, method="post", api=True, data={"k": 3}),
    ("api_churn_models", "post"): Route(RUNNERS, ok=202, method="post", api=True, data={}),
    ("api_lookalike_runs", "post"): Route(RUNNERS, ok=400, method="post", api=True, data={"segment": "nope"}),
    ("api_lookalike_segment", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True, kwargs="lookalike_run",
                                             data={"key": "matrix-like", "name": "Like"}),  # neither top nor min_score
    ("api_segment_from_cluster", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True, kwargs="cluster",
                                                data={"key": ""}),
    ("api_surveys", "post"): Route(ADMIN, ok=400, method="post", api=True, data={"key": "nps", "name": "X",
                                                                                "questions": []}),
    ("api_survey", "patch"): Route(ADMIN, ok=400, method="patch", api=True, kwargs="survey", data={"name": ""}),
    ("api_segments_review_decide", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True, kwargs="segment",
                                                  data={"decision": "keep", "note": ""}),  # a note is required
    ("api_targeting", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True,
                                     data={"targets": [{"segment": "ghost"}]}),
    ("api_journey", "put"): Route(SEGMENT_EDITORS, ok=400, method="put", api=True, kwargs="segment",
                                  data={"stages": []}),
    ("api_funnel", "post"): Route(MEMBERS, method="post", api=True,
                                  data={"steps": [{"event": "user_signed_up"}, {"event": "project_created"}]}),
    ("api_funnel_dropoffs", "post"): Route(SEGMENT_EDITORS, ok=400, method="post", api=True,  # step out of range
                                           data={"funnel": {"steps": [{"event": "a"}, {"event": "b"}]}, "step": 9,
                                                 "key": "matrix-drop"}),
    # The endpoint's loopback URL is refused by the SSRF guard: answered, nothing sent.
    ("api_webhook_test", "post"): Route(CAMPAIGNERS, method="post", api=True, kwargs="webhook"),
}
# Routes under these prefixes come from libraries and are covered by their own tests
# (allauth: login, password reset, MFA — tests/tenants/test_security.py; Django admin).
LIBRARY_PREFIXES = ("accounts/", "admin/")

PUBLIC_ROUTES: dict[str, tuple[int, int]] = {
    # name: (anonymous, logged in)
    "landing": (200, 200),
    "signup": (200, 200),
    "tenant_picker": (302, 200),
    "tenant_enter": (302, 302),
    "healthz": (503, 503),
    "prometheus_metrics": (200, 200),  # the test client is loopback; a token or other host: tests/ops/test_metrics.py
}


def named_patterns(urlconf: str) -> dict[str, str]:
    """{name: route} for every pattern, recursing into includes, skipping library prefixes."""
    found: dict[str, str] = {}

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if route.startswith(LIBRARY_PREFIXES):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"unnamed route {route!r}: name it and add it to the matrix"
                found[pattern.name] = route
    walk(get_resolver(urlconf).url_patterns)
    return found


def test_every_route_is_in_the_table():
    assert set(named_patterns("config.urls_tenant")) == set(TENANT_ROUTES)
    assert set(named_patterns("config.urls_public")) == set(PUBLIC_ROUTES)


def test_views_declare_the_permission_the_table_expects():
    resolver = get_resolver("config.urls_tenant")
    for name, route in TENANT_ROUTES.items():
        if route.api or route.open or route.permission is None:
            continue
        view = next(p.callback for p in _patterns(resolver) if p.name == name)
        assert getattr(view, "required_permission", None) == route.permission, name


def _patterns(resolver):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern)
        else:
            yield pattern


def test_builtin_roles_grant_what_the_product_promises():
    from tenants.permissions import BUILTIN_ROLES, CATALOGUE

    perms = {key: spec[2] for key, spec in BUILTIN_ROLES.items()}
    assert perms["admin"] == set(CATALOGUE)
    assert {"segments.edit", "campaigns.edit", "campaigns.launch"} <= perms["marketer"]
    assert {"members.manage", "settings.modify", "api_keys.manage", "data.export"}.isdisjoint(perms["marketer"])
    assert {"reports.view", "data.export", "segments.view", "segments.edit"} <= perms["analyst"]
    assert {"campaigns.edit", "campaigns.launch", "customers.view_pii"}.isdisjoint(perms["analyst"])
    assert all(p.endswith(".view") and p != "customers.view_pii" for p in perms["viewer"])


# ------------------------------------------------------------------------- the matrix


def build_objects(tenant, admin_email: str = "admin@alpha.test") -> dict[str, dict]:
    """One object of each kind a route can name, in `tenant`, as URL kwargs."""
    connection.set_tenant(tenant)
    admin = membership_of(tenant, admin_email)
    now = timezone.now()
    target = make_member(tenant, f"target@{tenant.slug}.test", "viewer").memberships.get()
    invitation, _ = member_invite(actor=admin, email=f"invited@{tenant.slug}.test",
                                  role=Role.objects.get(tenant=tenant, key="viewer"), department=None, now=now)
    role = role_create(actor=admin, name="Matrix role", permissions=["reports.view"])
    key, _ = api_key_create(actor=admin, name="matrix", scopes=["read"], now=now)
    customer, _ = customer_upsert(actor=admin, external_id="matrix-customer", builtin={}, custom={}, now=now)
    task_run = task_run_create(kind=TaskRun.Kind.CSV_IMPORT, label="matrix.csv")
    TraitDefinition.objects.get_or_create(key="matrix_trait", defaults={"type": "string"})
    pro = {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}
    segment, _ = segment_create(actor=admin, key="matrix-segment", name="Matrix segment", definition=pro, now=now)
    # …used by another rule, so its delete meets the reference guard whoever tries first.
    segment_create(actor=admin, key="matrix-user", name="Matrix user", now=now, definition={
        "version": 1, "match": "all", "conditions": [{"type": "segment", "segment": "matrix-segment", "op": "in"}]})
    static_segment, _ = segment_create(actor=admin, key="matrix-static", name="Matrix static", kind="static", now=now)
    play = play_create(actor=admin, name="Matrix play", segment_id=segment.pk, tactic_type="email",
                       kpi="conversion_rate")
    campaign_fields = {"name": "Matrix campaign", "segment_id": segment.pk, "channel": "email",
                       "schedule": {"kind": "once", "at": (now + timedelta(days=1)).isoformat()},
                       "content": {"subject": "Hi {{ first_name }}", "body": "Hello"}}
    campaign = campaign_create(actor=admin, **campaign_fields)
    campaign_done = campaign_cancel(actor=admin, campaign=campaign_create(actor=admin, **campaign_fields), now=now)
    webhook = WebhookEndpoint.objects.create(segment=segment, segment_label=segment.name, url="http://127.0.0.1:9/hook",
                                             secret="whsec_bWF0cml4", events=["entered"])
    # Rows only (the pages these routes serve read no file): one waiting for its mapping, one finished.
    import_job = ImportJob.objects.create(kind="customers", original_name="matrix.csv", file="imports/matrix.csv",
                                          size=20, sha256="0" * 64, header=["external_id"], sample=[["u1"]])
    import_done = ImportJob.objects.create(kind="customers", original_name="matrix.csv", file="imports/matrix.csv",
                                           size=20, sha256="0" * 64, header=["external_id"], sample=[["u1"]],
                                           mapping={"external_id": "external_id"}, status="succeeded",
                                           task_run=task_run)
    export_done, export_file = _export_with_a_file(now)
    run = ClusteringRun.objects.create(version=1, status="succeeded", as_of=now, k=1, customers=1, is_active=True,
                                       quality={"silhouette": None, "median_rule_f1": 1.0})
    Cluster.objects.create(run=run, index=0, key="r1c1", size=1, share=1.0, persona={"name": "Matrix Users"},
                           proposal=pro, proposal_summary="plan is pro", precision=1.0, recall=1.0, matched=1)
    churn_model = ChurnModel.objects.create(
        version=1, status="succeeded", as_of=now, horizon_days=30, lead_days=15, is_active=True, customers=1,
        metrics={"model": {"auc": 0.9, "pr_auc": 0.6, "brier": 0.1, "ece": 0.02},
                 "baseline": {"auc": 0.85, "pr_auc": 0.5, "brier": 0.12, "ece": 0.03},
                 "test_customers": 100, "test_churn_rate": 0.2, "train_customers": 300},
        calibration=[{"predicted": 0.1, "observed": 0.12, "customers": 100}],
        by_lead=[{"days_ahead": 45, "auc": 0.9, "customers": 100, "churners": 20, "churners_in_top_fifth": 0.7}],
        importance=[{"group": "activity", "mean_abs_contribution": 0.05}],
        ltv={"months": 24, "median": 10.0, "mean": 20.0, "top_decile_from": 50.0, "high_potential_sign_ups": 0,
             "histogram": [{"from": 0.0, "to": 50.0, "customers": 1}]})
    lookalike_run = LookalikeRun.objects.create(version=1, status="succeeded", seed_segment=segment, seed_key=segment.key,
                                                as_of=now, seed_size=1, customers=2,
                                                metrics={"held_out": 1, "precision_at_n": 1.0, "base_rate": 0.5,
                                                         "lift": 2.0, "candidates": 2, "recall_at_n": 1.0},
                                                histogram=[{"from": 0.0, "to": 0.1, "customers": 1}])
    CustomerScore.objects.create(customer=customer, model=churn_model, churn_risk=0.4, scored_at=now,
                                 drivers=[{"group": "activity", "contribution": 0.2}], predicted_ltv=100,
                                 ltv_low=80, ltv_high=120)
    connection.set_schema_to_public()
    return {
        "clustering_run": {"version": run.version}, "cluster": {"version": run.version, "index": 0},
        "churn_model": {"version": churn_model.version}, "lookalike_run": {"version": lookalike_run.version},
        "": {}, "bad_token": {"token": "not-a-token"}, "member": {"pk": target.pk},
        "invitation": {"pk": invitation.pk}, "role": {"pk": role.pk},
        "department": {"pk": Department.objects.filter(tenant=tenant).first().pk}, "api_key": {"pk": key.pk},
        "customer": {"external_id": customer.external_id}, "task_run": {"pk": task_run.pk},
        "trait": {"key": "matrix_trait"}, "survey": {"key": "nps"},
        "review_decision": {"key": segment.key, "decision": "snooze"},
        "segment": {"key": segment.key}, "static_segment": {"key": static_segment.key},
        "segment_customer": {"key": segment.key, "customer_id": customer.pk},
        "import_job": {"pk": import_job.pk}, "import_done": {"pk": import_done.pk},
        "export_done": {"pk": export_done.pk}, "export_file": {"pk": export_done.pk, "file_id": export_file.pk},
        "play": {"pk": play.pk}, "campaign": {"pk": campaign.pk}, "campaign_done": {"pk": campaign_done.pk},
        "webhook": {"pk": webhook.pk}, "segment_key": {"key": segment.key},
        "lookup_user": {"user_id": customer.external_id},
        "lookup_user_segment": {"user_id": customer.external_id, "key": segment.key},
    }


def _export_with_a_file(now):
    """A finished export with one stored file and its manifest (the download routes read them)."""
    storage = warehouse_storage()
    prefix = f"{connection.schema_name}/exports/matrix"
    for name, body in ((f"{prefix}/manifest.json", b'{"format": "strata-warehouse-export"}'),
                       (f"{prefix}/segments/part-00001.parquet", b"PAR1 matrix PAR1")):
        if not storage.exists(name):
            storage.save(name, ContentFile(body))
    export = WarehouseExport.objects.create(status="succeeded", tables=["segments"], events_until=now,
                                            tables_done=["segments"], rows={"segments": 1},
                                            manifest=f"{prefix}/manifest.json")
    file = WarehouseExportFile.objects.create(export=export, table="segments", path=f"{prefix}/segments/part-00001.parquet",
                                              rows=1, row_groups=1, bytes=16, sha256="0" * 64)
    return export, file


def client_for(role: str, tenant, other_tenant) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    if role == "outsider":
        client.force_login(membership_of(other_tenant, "admin@beta.test").user)
    elif role != "anonymous":
        client.force_login(make_member(tenant, f"{role}-matrix@alpha.test", role))
    return client


def expected(route: Route, role: str) -> int:
    if route.open or role in route.allowed:
        return route.ok
    if role == "anonymous":
        return 401 if route.api else 302
    if role == "outsider":
        return 404
    return 403


@pytest.mark.parametrize("name", sorted(TENANT_ROUTES))
def test_route_by_role(name, tenant, other_tenant):
    from django.urls import reverse

    route = TENANT_ROUTES[name]
    kwargs = build_objects(tenant)[route.kwargs]
    url = reverse(name, urlconf="config.urls_tenant", kwargs=kwargs or None)
    got = {}
    for role in sorted(ROLES, key=lambda r: r == "admin"):  # admin last: its writes succeed
        client = client_for(role, tenant, other_tenant)
        response = getattr(client, route.method)(url, route.data)
        got[role] = response.status_code
        connection.set_schema_to_public()
    assert got == {role: expected(route, role) for role in ROLES}


def test_api_writes_name_routes_of_the_table():
    assert {name for name, _ in API_WRITES} <= set(TENANT_ROUTES)


@pytest.mark.parametrize("name,method", sorted(API_WRITES))
def test_api_write_by_role(name, method, tenant, other_tenant):
    from django.urls import reverse

    route = API_WRITES[name, method]
    kwargs = build_objects(tenant)[route.kwargs]
    url = reverse(name, urlconf="config.urls_tenant", kwargs=kwargs or None)
    got = {}
    for role in sorted(ROLES, key=lambda r: r == "admin"):  # admin last: its writes succeed
        client = client_for(role, tenant, other_tenant)
        response = getattr(client, method)(url, json.dumps(route.data), content_type="application/json")
        got[role] = response.status_code
        connection.set_schema_to_public()
    assert got == {role: expected(route, role) for role in ROLES}


@pytest.mark.parametrize("name", sorted(PUBLIC_ROUTES))
def test_public_route(name, tenant):
    from django.urls import reverse

    kwargs = {"slug": tenant.slug} if name == "tenant_enter" else None
    url = reverse(name, urlconf="config.urls_public", kwargs=kwargs)
    anonymous = Client(HTTP_HOST="localhost").get(url).status_code
    member = Client(HTTP_HOST="localhost")
    member.force_login(membership_of(tenant, "admin@alpha.test").user)
    assert (anonymous, member.get(url).status_code) == PUBLIC_ROUTES[name]


# Members, invitations, roles and departments live in the public schema with global ids.
# (API keys live in each tenant's schema: an id there can only name that tenant's key.)
@pytest.mark.parametrize("name", sorted(n for n, r in TENANT_ROUTES.items()
                                        if r.kwargs in {"member", "role", "department", "invitation"}))
def test_another_tenants_object_ids_are_not_found(name, tenant, other_tenant):
    """alpha's admin, on alpha's host, naming beta's objects by id: 404, nothing changes."""
    from django.urls import reverse

    route = TENANT_ROUTES[name]
    foreign = build_objects(other_tenant, "admin@beta.test")[route.kwargs]
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(membership_of(tenant, "admin@alpha.test").user)
    response = getattr(client, route.method)(reverse(name, urlconf="config.urls_tenant", kwargs=foreign), route.data)
    assert response.status_code == 404
