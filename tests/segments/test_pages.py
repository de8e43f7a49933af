"""The segment pages: the directory (freshness, trends, hygiene, filters, sort, htmx
table), the detail (charts, members with masking, why, diffs, log, actions), the builder
(create, edit to a new version, errors at their paths, persona), its live preview and
typeahead, static members, the customer profile's memberships panel, Settings → Segments,
and tenant isolation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from customers.models import Customer
from segments import engine
from segments.models import Membership, Segment, SegmentEvaluation, SegmentSizeSnapshot, SegmentVersion
from segments.services import segment_create

from tenants.services import membership_set, role_create
from tests.conftest import host_of, make_member, membership_of
from tests.customers.customer_data import client_as

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def rule(*conditions, match="all") -> dict:
    return {"version": 1, "match": match, "conditions": list(conditions)}


PRO = {"type": "trait", "field": "plan", "op": "eq", "value": "pro"}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(tenant):
    """Three pro customers and one free, a dynamic "pro" segment evaluated at NOW with a
    week of daily sizes, and a static list. Leaves the connection in the public schema."""
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    for i, plan in enumerate(["pro", "pro", "pro", "free"]):
        Customer.objects.create(external_id=f"cus-{i}", email=f"person{i}@example.test", name=f"Person {i}", plan=plan,
                                country="DE" if i % 2 else "FR")
    pro, _ = segment_create(actor=admin, key="pro", name="Pro customers", definition=rule(PRO), note="first",
                            tags=["billing"], now=NOW - timedelta(days=1))
    engine.evaluate(segment_id=pro.pk, now=NOW - timedelta(minutes=5), trigger="manual", clock=lambda: NOW)
    SegmentSizeSnapshot.objects.filter(segment=pro).delete()
    for d in range(7):
        SegmentSizeSnapshot.objects.create(segment=pro, day=(NOW - timedelta(days=6 - d)).date(), size=d, entered=1,
                                           exited=0)
    static, _ = segment_create(actor=admin, key="vip", name="VIP list", kind="static", now=NOW)
    connection.set_schema_to_public()
    return {"pro": pro, "static": static}


def _in(tenant):
    connection.set_tenant(tenant)


# ----------------------------------------------------------------------------- directory


def test_list_shows_size_trend_freshness_owner_tags_and_warnings(tenant, world):
    """A fresh evaluated segment shows its size, a sparkline, a fresh badge, its owner and
    tags; 3 members is below the default minimum of 50, so it is flagged too small."""
    response = client_as(tenant, "viewer").get("/segments/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Pro customers" in html and "VIP list" in html
    assert 'data-testid="segment-size">3<' in html
    assert "data-chart=" in html  # the 7-day trend
    assert ">Fresh" in html.replace("\n", "").replace("  ", "") or "Fresh" in html
    assert "admin@alpha.test" in html and "billing" in html
    assert 'data-testid="hygiene-too_small"' in html
    assert "New segment" not in html  # a viewer cannot build


def test_new_segment_button_only_for_editors(tenant, world):
    assert "New segment" in client_as(tenant, "marketer").get("/segments/").content.decode()
    assert "New segment" in client_as(tenant, "analyst").get("/segments/").content.decode()
    assert "New segment" not in client_as(tenant, "viewer").get("/segments/").content.decode()


def test_freshness_is_stale_after_twice_the_interval_and_failed_after_a_failed_run(tenant, world):
    _in(tenant)
    pro = world["pro"]
    Segment.objects.filter(pk=pro.pk).update(last_evaluated_at=NOW - timedelta(minutes=31))  # interval 15
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    stale = client.get("/segments/-/table/?freshness=stale").content.decode()
    assert "Pro customers" in stale and "VIP list" not in stale
    assert "Pro customers" not in client.get("/segments/-/table/?freshness=fresh").content.decode()
    _in(tenant)
    SegmentEvaluation.objects.create(segment=pro, now=NOW, trigger="schedule", status="failed", error="boom",
                                     finished_at=NOW)
    connection.set_schema_to_public()
    failed = client.get("/segments/-/table/?freshness=failed").content.decode()
    assert "Pro customers" in failed and "boom" in failed


def test_table_partial_filters_by_search_kind_and_tag_and_pushes_the_url(tenant, world):
    client = client_as(tenant, "viewer")
    response = client.get("/segments/-/table/?q=vip", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/segments/?q=vip"
    html = response.content.decode()
    assert "VIP list" in html and "Pro customers" not in html
    assert "Pro customers" not in client.get("/segments/-/table/?kind=static").content.decode()
    tagged = client.get("/segments/-/table/?tag=billing").content.decode()
    assert "Pro customers" in tagged and "VIP list" not in tagged


def test_sorting_by_size_descending_puts_the_largest_first(tenant, world):
    html = client_as(tenant, "viewer").get("/segments/-/table/?sort=-size").content.decode()
    assert html.index("Pro customers") < html.index("VIP list")
    html = client_as(tenant, "viewer").get("/segments/-/table/?sort=size").content.decode()
    assert html.index("VIP list") < html.index("Pro customers")


def test_a_bad_filter_is_reported_with_400_and_left_out(tenant, world):
    response = client_as(tenant, "viewer").get("/segments/-/table/?kind=bogus&freshness=old")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Kind:" in html and "Freshness:" in html and "Pro customers" in html


def test_empty_directory_tells_what_to_do_next(tenant):
    html = client_as(tenant, "marketer").get("/segments/").content.decode()
    assert "No segments yet." in html and "Build a segment" in html
    html = client_as(tenant, "viewer").get("/segments/").content.decode()
    assert "No segments yet." in html and "Build a segment" not in html


def test_main_nav_links_segments_for_members_with_segments_view(tenant):
    html = client_as(tenant, "viewer").get("/segments/").content.decode()
    assert 'href="/segments/"' in html and 'aria-current="page">Segments' in html


# ----------------------------------------------------------------------------- detail


def test_detail_shows_charts_members_versions_and_log(tenant, world):
    html = client_as(tenant, "marketer").get("/segments/pro/").content.decode()
    assert 'data-testid="size-chart"' in html and 'data-testid="flow-chart"' in html
    assert html.count('data-testid="member-row"') == 3
    assert "Person 0" in html and "person0@example.test" in html
    assert 'data-testid="version"' in html and "first" in html  # v1 and its note
    assert 'data-testid="evaluation-log"' in html and "Run by hand" in html
    assert "Evaluate now" in html and "Freeze into snapshot" in html and 'data-testid="edit-segment"' in html


def test_viewer_sees_masked_members_and_no_edit_controls_or_export(tenant, world):
    html = client_as(tenant, "viewer").get("/segments/pro/").content.decode()
    assert "person0@example.test" not in html and "Person 0" not in html
    assert "cus-0" in html
    for control in ("Evaluate now", "Freeze into snapshot", 'data-testid="edit-segment"', "Delete segment",
                    'data-testid="export-csv"'):
        assert control not in html


def test_analyst_gets_the_csv_export_link(tenant, world):
    html = client_as(tenant, "analyst").get("/segments/pro/").content.decode()
    assert 'href="/api/v1/segments/pro/members/export/"' in html


def test_members_partial_searches_and_pages(tenant, world):
    client = client_as(tenant, "marketer")
    html = client.get("/segments/pro/members/?q=cus-1").content.decode()
    assert html.count('data-testid="member-row"') == 1 and "cus-1" in html
    html = client.get("/segments/pro/members/?q=person2@").content.decode()
    assert html.count('data-testid="member-row"') == 1
    # A viewer's search does not match emails (they cannot read them).
    assert 'data-testid="member-row"' not in client_as(tenant, "viewer").get("/segments/pro/members/?q=person2@").content.decode()
    assert "No more members." in client.get("/segments/pro/members/?page=2").content.decode()


def test_why_panel_renders_the_explain_tree_green_and_red(tenant, world):
    _in(tenant)
    free = Customer.objects.get(external_id="cus-3")
    member = Customer.objects.get(external_id="cus-0")
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    inside = client.get(f"/segments/pro/explain/{member.pk}/").content.decode()
    assert 'data-result="true"' in inside and "plan is pro" in inside and "Member since" in inside
    outside = client.get(f"/segments/pro/explain/{free.pk}/").content.decode()
    assert 'data-result="false"' in outside and "does not match" in outside and "Never a member" in outside
    assert client.get("/segments/pro/explain/999999/").status_code == 404


def test_diff_between_versions_is_green_and_red_lines(tenant, world):
    _in(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    from segments.services import segment_update

    segment_update(actor=admin, segment=world["pro"], now=NOW, note="team too",
                   definition=rule({"type": "trait", "field": "plan", "op": "in", "value": ["pro", "team"]}))
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    html = client.get("/segments/pro/diff/?from=1&to=2").content.decode()
    assert 'data-kind="del"' in html and 'data-kind="add"' in html
    assert '"op": "in"' in html.replace("&quot;", '"')
    assert client.get("/segments/pro/diff/?from=1&to=9").status_code == 404
    assert client.get("/segments/pro/diff/?from=x").status_code == 400
    assert 'data-testid="compare-2"' in client.get("/segments/pro/").content.decode()


def test_evaluate_now_queues_and_static_is_refused(tenant, world):
    client = client_as(tenant, "marketer")
    response = client.post("/segments/pro/evaluate/", follow=True)
    assert "Evaluation queued" in response.content.decode()
    response = client.post("/segments/vip/evaluate/", follow=True)
    assert "Only dynamic segments are evaluated." in response.content.decode()


def test_freeze_into_snapshot_creates_a_frozen_copy(tenant, world):
    response = client_as(tenant, "marketer").post("/segments/pro/snapshot/", {"key": "pro-nov", "name": "Pro in Nov"})
    assert response.status_code == 302 and response["Location"] == "/segments/pro-nov/"
    _in(tenant)
    snapshot = Segment.objects.get(key="pro-nov")
    assert snapshot.kind == "snapshot" and Membership.objects.filter(segment=snapshot, exited_at__isnull=True).count() == 3
    connection.set_schema_to_public()
    again = client_as(tenant, "marketer").post("/segments/pro/snapshot/", {"key": "pro-nov", "name": "Again"})
    assert again.status_code == 400 and "exists" in again.content.decode()


def test_delete_needs_the_key_typed_and_is_refused_while_referenced(tenant, world):
    _in(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    user, _ = segment_create(actor=admin, key="uses-pro", name="Uses pro", now=NOW,
                             definition=rule({"type": "segment", "segment": "pro", "op": "in"}))
    connection.set_schema_to_public()
    client = client_as(tenant, "marketer")
    wrong = client.post("/segments/pro/delete/", {"confirm": "nope"})
    assert wrong.status_code == 400 and "Type the key" in wrong.content.decode()
    refused = client.post("/segments/pro/delete/", {"confirm": "pro"})
    assert refused.status_code == 409 and "Used by uses-pro" in refused.content.decode()
    assert client.post("/segments/uses-pro/delete/", {"confirm": "uses-pro"}).status_code == 302
    _in(tenant)
    assert not Segment.objects.filter(key="uses-pro").exists()


def test_static_members_add_remove_and_unknown_ids(tenant, world):
    client = client_as(tenant, "marketer")
    assert client.post("/segments/vip/static/", {"add": "cus-0, cus-1"}).status_code == 302
    _in(tenant)
    assert set(Membership.objects.filter(segment=world["static"], exited_at__isnull=True)
               .values_list("customer__external_id", flat=True)) == {"cus-0", "cus-1"}
    connection.set_schema_to_public()
    assert client.post("/segments/vip/static/", {"remove": "cus-1"}).status_code == 302
    bad = client.post("/segments/vip/static/", {"add": "ghost"})
    assert bad.status_code == 400 and "ghost" in bad.content.decode()
    assert client.post("/segments/vip/static/", {}).status_code == 400
    refused = client.post("/segments/pro/static/", {"add": "cus-0"})
    assert refused.status_code == 400 and "only to static segments" in refused.content.decode()


def test_csv_upload_adds_known_rows_and_reports_the_rest(tenant, world):
    client = client_as(tenant, "marketer")
    upload = SimpleUploadedFile("ids.csv", b"external_id\ncus-2\nghost\n", content_type="text/csv")
    response = client.post("/segments/vip/upload/", {"file": upload})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="upload-report"' in html and "ghost" in html and "No customer has this external id" in html
    assert client.post("/segments/vip/upload/", {}).status_code == 400


# ----------------------------------------------------------------------------- builder


def _form(**overrides) -> dict:
    data = {"name": "Engaged pros", "key": "engaged-pros", "kind": "dynamic", "tags": "a, b", "refresh_minutes": "30",
            "definition": json.dumps(rule(PRO)), "note": "v1 note", "persona_name": "Pat", "persona_goals": "Grow"}
    data.update(overrides)
    return data


def test_builder_pages_render_for_editors(tenant, world):
    client = client_as(tenant, "marketer")
    html = client.get("/segments/new/").content.decode()
    assert 'id="sb-catalogue"' in html and 'id="sb-node"' in html and "Persona card" in html
    catalogue = json.loads(html.split('id="sb-catalogue" type="application/json">')[1].split("</script>")[0])
    assert {"field": "plan", "category": "value"}.items() <= next(t for t in catalogue["traits"] if t["field"] == "plan").items()
    assert "pro" in {s["key"] for s in catalogue["segments"]}
    edit = client.get("/segments/pro/edit/").content.decode()
    assert "Edit “Pro customers”" in edit and '"value": "pro"' in edit


def test_create_saves_version_one_with_note_tags_and_persona(tenant, world):
    response = client_as(tenant, "marketer").post("/segments/new/", _form())
    assert response.status_code == 302 and response["Location"] == "/segments/engaged-pros/"
    _in(tenant)
    segment = Segment.objects.get(key="engaged-pros")
    assert segment.definition == rule(PRO) and segment.tags == ["a", "b"]
    assert segment.persona == {"name": "Pat", "goals": "Grow"}
    assert segment.refresh_interval == timedelta(minutes=30)
    assert SegmentVersion.objects.get(segment=segment).note == "v1 note"


def test_edit_with_a_changed_rule_is_version_two(tenant, world):
    definition = rule({"type": "trait", "field": "country", "op": "eq", "value": "DE"})
    response = client_as(tenant, "marketer").post("/segments/pro/edit/", _form(
        name="Pro customers", key="ignored", definition=json.dumps(definition), note="Germany only"))
    assert response.status_code == 302
    _in(tenant)
    segment = Segment.objects.get(key="pro")
    assert segment.definition_version == 2 and segment.definition == definition
    assert SegmentVersion.objects.get(segment=segment, version=2).note == "Germany only"


def test_an_invalid_rule_comes_back_with_errors_at_their_paths(tenant, world):
    bad = rule(PRO, {"type": "event", "event": "login", "count": {"op": "contains", "value": 1}})
    response = client_as(tenant, "marketer").post("/segments/new/", _form(definition=json.dumps(bad)))
    assert response.status_code == 400
    html = response.content.decode()
    state = json.loads(html.split('id="sb-state" type="application/json">')[1].split("</script>")[0])
    assert [e["path"] for e in state["errors"]] == ["definition.conditions[1].count.op"]
    assert state["definition"] == bad  # the draft is kept
    _in(tenant)
    assert not Segment.objects.filter(key="engaged-pros").exists()


def test_form_errors_name_and_key_and_bad_json(tenant, world):
    client = client_as(tenant, "marketer")
    response = client.post("/segments/new/", _form(name="", key="pro"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="name-error"' in html
    response = client.post("/segments/new/", _form(key="Bad Key!"))
    assert response.status_code == 400 and 'id="key-error"' in response.content.decode()
    response = client.post("/segments/new/", _form(definition="{not json"))
    assert response.status_code == 400 and "Not valid JSON" in response.content.decode()
    response = client.post("/segments/new/", _form(key="pro"))
    assert response.status_code == 400 and "exists" in response.content.decode()


def test_static_segment_is_created_without_a_rule(tenant, world):
    response = client_as(tenant, "marketer").post("/segments/new/", _form(kind="static", key="hand", definition=""))
    assert response.status_code == 302
    _in(tenant)
    assert Segment.objects.get(key="hand").kind == "static"


def _preview(client, definition, segment=None):
    return client.post("/segments/-/preview/", json.dumps({"definition": definition, "segment": segment}),
                       content_type="application/json")


def test_preview_counts_samples_and_warns_too_small(tenant, world):
    client = client_as(tenant, "marketer")
    response = _preview(client, rule(PRO))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="preview-count">3<' in html
    assert html.count("cus-") == 3 and "cus-3" not in html
    assert 'data-code="too_small"' in html
    assert 'data-testid="preview-impact"' not in html  # a new segment has nothing to compare with


def test_preview_of_an_edit_shows_the_impact_and_a_near_duplicate(tenant, world):
    client = client_as(tenant, "marketer")
    html = _preview(client, rule({"type": "trait", "field": "country", "op": "eq", "value": "DE"}), "pro").content.decode()
    # DE: cus-1 (pro) and cus-3 (free): cus-3 enters, cus-0 and cus-2 exit.
    assert 'data-testid="preview-count">2<' in html and "+1" in html and "−2" in html
    same = _preview(client, rule(PRO)).content.decode()  # a new draft equal to "pro"
    assert 'data-code="near_duplicate"' in same and "Pro customers" in same


def test_preview_errors_carry_their_paths(tenant, world):
    client = client_as(tenant, "marketer")
    response = _preview(client, rule({"type": "trait", "field": "plan", "op": "gt", "value": 1}))
    assert response.status_code == 400
    errors = json.loads(response.content.decode().split('data-errors="')[1].split('"')[0].replace("&quot;", '"'))
    assert errors[0]["path"] == "definition.conditions[0].op" and errors[0]["code"] == "invalid_op"
    bad_json = client.post("/segments/-/preview/", "{", content_type="application/json")
    assert bad_json.status_code == 400


def test_values_endpoint_gives_known_values_and_hides_pii(tenant, world):
    client = client_as(tenant, "marketer")
    assert client.get("/segments/-/values/?field=country").json()["values"] == ["DE", "FR"]
    assert client.get("/segments/-/values/?field=country&q=d").json()["values"] == ["DE"]
    assert client.get("/segments/-/values/?field=company_size").json()["values"] == []  # a number
    assert client.get("/segments/-/values/?field=email").json()["values"]  # marketers may read emails
    _in(tenant)
    role = role_create(actor=membership_of(tenant, "admin@alpha.test"), name="Builder without PII",
                       permissions=["segments.view", "segments.edit"])
    connection.set_schema_to_public()
    user = make_member(tenant, "builder@alpha.test", "viewer")
    membership_set(user=user, tenant=tenant, role=role.key)
    builder = Client(HTTP_HOST=host_of(tenant))
    builder.force_login(user)
    assert builder.get("/segments/-/values/?field=email").json()["values"] == []
    assert builder.get("/segments/-/values/?field=country").json()["values"] == ["DE", "FR"]


# ----------------------------------------------------------------------------- elsewhere


def test_customer_profile_lists_memberships_with_why_links(tenant, world):
    _in(tenant)
    member = Customer.objects.get(external_id="cus-0")
    connection.set_schema_to_public()
    html = client_as(tenant, "viewer").get("/customers/cus-0/").content.decode()
    assert 'data-testid="memberships"' in html and "Pro customers" in html
    assert f"/segments/pro/?why={member.pk}" in html
    detail = client_as(tenant, "viewer").get(f"/segments/pro/?why={member.pk}").content.decode()
    assert f"/segments/pro/explain/{member.pk}/" in detail


def test_settings_segments_changes_the_minimum_size(tenant, world):
    client = client_as(tenant, "admin")
    assert client.get("/settings/segments/").status_code == 200
    assert client.post("/settings/segments/", {"min_size": "-1"}).status_code == 400
    assert client.post("/settings/segments/", {"min_size": "2"}).status_code == 302
    html = client_as(tenant, "viewer").get("/segments/").content.decode()
    assert 'data-testid="hygiene-too_small"' not in html  # 3 members ≥ 2


def test_another_tenants_segment_key_is_not_found(tenant, other_tenant, world):
    connection.set_tenant(other_tenant)
    admin = membership_of(other_tenant, "admin@beta.test")
    segment_create(actor=admin, key="beta-only", name="Beta only", definition=rule(PRO), now=NOW)
    connection.set_schema_to_public()
    client = client_as(tenant, "admin")
    for url in ("/segments/beta-only/", "/segments/beta-only/edit/", "/segments/beta-only/members/",
                "/segments/beta-only/diff/?from=1&to=1"):
        assert client.get(url).status_code == 404, url
    assert client.post("/segments/beta-only/delete/", {"confirm": "beta-only"}).status_code == 404
    assert "Beta only" not in client.get("/segments/").content.decode()


# ----------------------------------------------------------------------------- pause, resume, archive


def test_pause_resume_and_archive_from_the_detail_page(tenant, world, django_capture_on_commit_callbacks):
    from audit.models import AuditEvent

    client = client_as(tenant, "marketer")
    assert client.post("/segments/pro/status/", {"status": "paused"}).status_code == 302
    _in(tenant)
    assert Segment.objects.get(key="pro").status == "paused"
    connection.set_schema_to_public()
    page = client.get("/segments/pro/").content.decode()
    assert 'data-testid="resume-segment"' in page and 'data-testid="pause-segment"' not in page
    with django_capture_on_commit_callbacks() as queued:
        assert client.post("/segments/pro/status/", {"status": "active"}).status_code == 302
    assert queued, "a resumed dynamic segment is evaluated: it missed what happened while paused"
    assert client.post("/segments/pro/status/", {"status": "archived"}).status_code == 302
    _in(tenant)
    assert Segment.objects.get(key="pro").status == "archived"
    assert AuditEvent.objects.filter(action="segment.updated", target_id=str(world["pro"].pk)).count() >= 3


def test_archived_segments_leave_the_directory_unless_asked_for(tenant, world):
    _in(tenant)
    Segment.objects.filter(key="vip").update(status="archived")
    Segment.objects.filter(key="pro").update(status="paused")
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    default = client.get("/segments/").content.decode()
    assert "Pro customers" in default and "VIP list" not in default and ">Paused</span>" in default
    archived = client.get("/segments/", {"status": "archived"}).content.decode()
    assert "VIP list" in archived and "Pro customers" not in archived
    assert client.get("/segments/", {"status": "gone"}).status_code == 400


def test_a_bad_status_or_archiving_a_referenced_segment_is_refused_and_nothing_changes(tenant, world):
    _in(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    segment_create(actor=admin, key="pro-fans", name="Pro fans", now=NOW,
                   definition=rule({"type": "segment", "segment": "pro", "op": "in"}))
    connection.set_schema_to_public()
    client = client_as(tenant, "marketer")
    bad = client.post("/segments/pro/status/", {"status": "deleted"})
    assert bad.status_code == 400 and "Status is active, paused or archived." in bad.content.decode()
    used = client.post("/segments/pro/status/", {"status": "archived"})
    assert used.status_code == 400 and "Used by pro-fans" in used.content.decode()
    _in(tenant)
    assert Segment.objects.get(key="pro").status == "active"
    connection.set_schema_to_public()
    assert client_as(tenant, "viewer").post("/segments/pro/status/", {"status": "paused"}).status_code == 403
