"""/api/v1/segments/: CRUD with versions and warnings, preview, evaluate, members now and
at past times (paged, CSV), static members (ids and uploads), changes, version diffs,
explain, snapshots, overlap, schema; bad input, PII masking and tenant isolation."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from customers.models import Customer
from segments import engine
from segments.models import Membership, MembershipChange, Segment, SegmentEvaluation, SegmentVersion
from segments.selectors.members import member_batches
from segments.services import segment_create
from tenants.services import role_create
from tests.conftest import host_of, make_member, membership_of, session

NOW = datetime(2026, 6, 10, 12, tzinfo=timezone.utc)
T0 = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
URL = "/api/v1/segments/"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield



def post(client, url, body):
    return client.post(url, body if isinstance(body, str) else json.dumps(body), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, body if isinstance(body, str) else json.dumps(body), content_type="application/json")


def problems(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def codes(body) -> set[str]:
    return {w["code"] for w in body["warnings"]}


def plan_is(plan: str) -> dict:
    return {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": plan}]}


def clock():
    return NOW


def in_schema(tenant):
    connection.set_tenant(tenant)


def people(*specs: tuple[str, str], **common) -> list[Customer]:
    return [Customer.objects.create(external_id=external_id, plan=plan, **common) for external_id, plan in specs]


def dynamic(key: str, definition: dict) -> Segment:
    return Segment.objects.create(key=key, name=key.title(), definition=definition, definition_version=1,
                                  references=[])


def static(key: str, customers: list[Customer], now: datetime = T0) -> Segment:
    segment = Segment.objects.create(key=key, name=key.title(), kind=Segment.Kind.STATIC)
    if customers:
        engine.members_add(segment=segment, customer_ids=[c.pk for c in customers], now=now)
    return segment


def evaluate(segment: Segment, now: datetime) -> SegmentEvaluation:
    result = engine.evaluate(segment_id=segment.pk, now=now, trigger="manual", clock=clock)
    assert result.status == "succeeded", result.error
    return result


# ------------------------------------------------------------------------------ create / read / update / delete


def test_create_answers_201_with_version_1_parser_and_hygiene_warnings(tenant, django_capture_on_commit_callbacks):
    """A dynamic segment is saved as version 1, its evaluation is queued after commit, and
    the answer warns about an unknown event and a size below the minimum of 50."""
    in_schema(tenant)
    people(("u1", "pro"), ("u2", "pro"), ("u3", "free"))
    definition = {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "plan", "op": "eq", "value": "pro"},
        {"type": "event", "event": "never_seen_before", "count": {"op": "eq", "value": 0}}]}
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(session(tenant), URL, {"key": "pros", "name": "Pros", "definition": definition,
                                               "tags": ["b2b"], "refresh_minutes": 30})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["key"], body["kind"], body["definition_version"], body["refresh_minutes"], body["tags"]) == (
        "pros", "dynamic", 1, 30, ["b2b"])
    # queued once the save commits: the evaluation, and the back-fill of the lifetimes "never" reads
    assert len(callbacks) == 2
    warnings = {w["code"]: w for w in body["warnings"]}
    assert warnings["unknown_event"]["path"] == "definition.conditions[1].event"
    assert warnings["too_small"]["details"] == {"size": 2, "min_size": 50}
    assert set(warnings) == {"unknown_event", "too_small"}
    in_schema(tenant)
    assert list(SegmentVersion.objects.filter(segment__key="pros").values_list("version", flat=True)) == [1]
    assert AuditEvent.objects.filter(action="segment.created", target_label="pros").count() == 1


@pytest.mark.parametrize("body,expected", [
    ('{"key": "x", "name": ', {("", "parse_error")}),
    ('["not", "an", "object"]', {("", "invalid")}),
    ({"key": "x", "name": "X", "definition": plan_is("pro"), "colour": "red"}, {("colour", "unknown_field")}),
    ({"key": "Bad Key!", "name": "X", "definition": plan_is("pro")}, {("key", "invalid_value")}),
    ({"key": "overlap", "name": "X", "definition": plan_is("pro")}, {("key", "reserved")}),
    ({"key": "new", "name": "X", "definition": plan_is("pro")}, {("key", "reserved")}),
    ({"key": "x", "name": "X", "tags": "b2b", "definition": plan_is("pro")}, {("tags", "not_a_list")}),
    ({"key": "x", "name": "X", "refresh_minutes": "soon", "definition": plan_is("pro")}, {("refresh_minutes", "invalid")}),
    ({"key": "x", "name": "X", "definition": {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "plan", "op": "gt", "value": "pro"},
        {"type": "event", "event": "login", "count": {"op": "gte", "value": "many"}}]}},
     {("definition.conditions[0].op", "invalid_op"), ("definition.conditions[1].count.value", "invalid_type")}),
    ({"key": "x", "name": "X"}, {("definition", "invalid_type")}),
    ({"key": "x", "name": "X", "kind": "static", "definition": plan_is("pro")}, {("definition", "invalid_value")}),
    ({"key": "x", "name": "X", "kind": "snapshot"}, {("kind", "invalid_choice")}),
    ({"key": "x", "name": "X", "definition": plan_is("pro"), "department_id": 999999}, {("department_id", "unknown_department")}),
    ({"key": "x", "name": "X", "definition": plan_is("pro"), "persona": {"name": "Ada", "age": 3}},
     {("persona.age", "unknown_field")}),
    ({"key": "x", "name": "X", "definition": plan_is("pro"), "persona": "Ada"}, {("persona", "invalid")}),
])
def test_bad_create_input_is_a_coded_400_and_nothing_is_saved(tenant, body, expected):
    """Malformed JSON, wrong types, unknown fields and invalid rules (paths under
    `definition.`) are 400 with every problem; no segment or version is written."""
    response = post(session(tenant), URL, body)
    assert response.status_code == 400, response.content
    assert expected <= problems(response)
    in_schema(tenant)
    assert not Segment.objects.exists() and not SegmentVersion.objects.exists()


def test_create_with_a_persona_saves_the_card_with_the_segment(tenant):
    """One call, one transaction: the segment and its persona card."""
    persona = {"name": "Builder Ben", "goals": "Ship weekly", "needs": "Fast feedback"}
    response = post(session(tenant), URL, {"key": "builders", "name": "Builders", "definition": plan_is("pro"),
                                           "persona": persona})
    assert response.status_code == 201, response.content
    in_schema(tenant)
    assert Segment.objects.get(key="builders").persona == persona


def test_create_with_an_existing_key_is_refused(tenant):
    in_schema(tenant)
    dynamic("pros", plan_is("pro"))
    response = post(session(tenant), URL, {"key": "pros", "name": "Again", "definition": plan_is("pro")})
    assert (response.status_code, problems(response)) == (400, {("key", "duplicate")})


def test_list_filters_and_detail(tenant):
    in_schema(tenant)
    dynamic("pros", plan_is("pro"))
    static("vip", [])
    Segment.objects.filter(key="vip").update(tags=["hand"])
    admin = session(tenant)
    assert [s["key"] for s in admin.get(URL).json()["results"]] == ["pros", "vip"]
    assert [s["key"] for s in admin.get(URL, {"kind": "static"}).json()["results"]] == ["vip"]
    assert [s["key"] for s in admin.get(URL, {"tag": "hand"}).json()["results"]] == ["vip"]
    assert [s["key"] for s in admin.get(URL, {"search": "Pr"}).json()["results"]] == ["pros"]
    bad = admin.get(URL, {"kind": "rule", "status": "gone", "review": "old"})
    assert (bad.status_code, problems(bad)) == (400, {("kind", "invalid_value"), ("status", "invalid_value"),
                                                      ("review", "invalid_value")})
    detail = admin.get(f"{URL}pros/").json()
    assert (detail["definition"], detail["referenced_by"], detail["last_evaluation"], detail["stale"]) == (
        plan_is("pro"), [], None, False)


def test_update_a_definition_makes_version_2_and_keeps_version_1(tenant, django_capture_on_commit_callbacks):
    in_schema(tenant)
    people(("u1", "pro"))
    admin = session(tenant)
    assert post(admin, URL, {"key": "pros", "name": "Pros", "definition": plan_is("pro")}).status_code == 201
    with django_capture_on_commit_callbacks() as callbacks:
        response = patch(admin, f"{URL}pros/", {"definition": plan_is("team"), "name": "Teams", "note": "wider"})
    assert response.status_code == 200, response.content
    assert (response.json()["definition_version"], response.json()["name"]) == (2, "Teams")
    assert len(callbacks) == 1
    versions = admin.get(f"{URL}pros/versions/").json()
    assert [(v["version"], v["definition"], v["note"]) for v in versions] == [
        (2, plan_is("team"), "wider"), (1, plan_is("pro"), "")]


@pytest.mark.parametrize("body,expected", [
    ({"kind": "static"}, {("kind", "unknown_field")}),
    ({"definition": {"version": 1, "match": "some", "conditions": []}},
     {("definition.match", "invalid_value"), ("definition.conditions", "required")}),
    ({"status": "deleted"}, {("status", "invalid_choice")}),
    ({"persona": {"name": "Ada", "age": 3}}, {("persona.age", "unknown_field")}),
    ({"refresh_minutes": 0}, {("refresh_minutes", "invalid_range")}),
    ({"definition": None}, {("definition", "null")}),
])
def test_bad_update_input_changes_nothing(tenant, body, expected):
    in_schema(tenant)
    dynamic("pros", plan_is("pro"))
    response = patch(session(tenant), f"{URL}pros/", body)
    assert response.status_code == 400, response.content
    assert expected <= problems(response)
    in_schema(tenant)
    segment = Segment.objects.get(key="pros")
    assert (segment.definition_version, segment.status, segment.definition) == (1, "active", plan_is("pro"))


def test_delete_is_refused_while_referenced_then_allowed(tenant):
    """A segment another rule uses answers 409 `referenced` naming the user; once that one
    is gone it is deleted with its history (204)."""
    in_schema(tenant)
    admin_actor = membership_of(tenant, "admin@alpha.test")
    segment_create(actor=admin_actor, key="pros", name="Pros", definition=plan_is("pro"), now=NOW)
    segment_create(actor=admin_actor, key="pro-fans", name="Pro fans", now=NOW, definition={
        "version": 1, "match": "all", "conditions": [{"type": "segment", "segment": "pros", "op": "in"}]})
    admin = session(tenant)
    refused = admin.delete(f"{URL}pros/")
    assert (refused.status_code, problems(refused)) == (409, {("", "referenced")})
    assert "pro-fans" in refused.json()["errors"][0]["message"]
    assert admin.get(f"{URL}pros/").json()["referenced_by"] == ["pro-fans"]
    assert admin.delete(f"{URL}pro-fans/").status_code == 204
    assert admin.delete(f"{URL}pros/").status_code == 204
    in_schema(tenant)
    assert not Segment.objects.exists()


# ------------------------------------------------------------------------------ preview and evaluate


def test_preview_counts_samples_and_diffs_against_current_members_without_writing(tenant):
    """Current members {u1, u2, u3} (plan pro at T0); previewing `plan = team` (u3, u4)
    says 1 would enter (u4) and 2 would exit (u1, u2); nothing is written."""
    in_schema(tenant)
    people(("u1", "pro"), ("u2", "pro"), ("u3", "pro"), ("u5", "free"))
    segment = dynamic("pros", plan_is("pro"))
    evaluate(segment, T0)
    Customer.objects.filter(external_id="u3").update(plan="team")
    people(("u4", "team"))
    before = (Membership.objects.count(), MembershipChange.objects.count(), SegmentEvaluation.objects.count())
    response = post(session(tenant, "viewer"), f"{URL}pros/preview/", {"definition": plan_is("team")})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2 and body["impact"] == {"would_enter": 1, "would_exit": 2, "current_size": 3}
    assert sorted(c["external_id"] for c in body["sample"]) == ["u3", "u4"]
    in_schema(tenant)
    assert (Membership.objects.count(), MembershipChange.objects.count(), SegmentEvaluation.objects.count()) == before
    saved = post(session(tenant, "viewer"), f"{URL}pros/preview/", {}).json()  # the saved rule: u1, u2 match now
    assert (saved["count"], saved["impact"]) == (2, {"would_enter": 0, "would_exit": 1, "current_size": 3})


def test_preview_of_a_new_definition_and_its_bad_input(tenant):
    in_schema(tenant)
    people(*[(f"u{i}", "pro") for i in range(30)])
    admin = session(tenant)
    body = post(admin, f"{URL}preview/", {"definition": plan_is("pro")}).json()
    assert body["count"] == 30 and len(body["sample"]) == 20
    assert body["impact"] == {"would_enter": 30, "would_exit": 0, "current_size": 0}
    again = post(admin, f"{URL}preview/", {"definition": plan_is("pro")}).json()
    assert [c["id"] for c in again["sample"]] == [c["id"] for c in body["sample"]]  # a stable sample
    missing = post(admin, f"{URL}preview/", {})
    assert (missing.status_code, problems(missing)) == (400, {("definition", "required")})
    invalid = post(admin, f"{URL}preview/", {"definition": {"version": 1, "match": "all", "conditions": [
        {"type": "segment", "segment": "nope", "op": "in"}]}})
    assert (invalid.status_code, problems(invalid)) == (400, {("definition.conditions[0].segment", "unknown_segment")})
    assert post(admin, f"{URL}preview/", "{nope").status_code == 400


def test_preview_masks_the_sample_without_view_pii(tenant):
    in_schema(tenant)
    Customer.objects.create(external_id="u1", plan="pro", email="ada@example.test", name="Ada Lovelace")
    masked = post(session(tenant, "viewer"), f"{URL}preview/", {"definition": plan_is("pro")}).json()["sample"][0]
    plain = post(session(tenant, "marketer"), f"{URL}preview/", {"definition": plan_is("pro")}).json()["sample"][0]
    assert (masked["email"], masked["name"]) == ("a***@example.test", "A***")
    assert (plain["email"], plain["name"]) == ("ada@example.test", "Ada Lovelace")


def test_evaluate_queues_202_and_static_segments_are_refused(tenant, django_capture_on_commit_callbacks):
    in_schema(tenant)
    dynamic("pros", plan_is("pro"))
    static("vip", [])
    admin = session(tenant)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin.post(f"{URL}pros/evaluate/")
    assert (response.status_code, response.json()["queued"], len(callbacks)) == (202, True, 1)
    refused = admin.post(f"{URL}vip/evaluate/")
    assert (refused.status_code, problems(refused)) == (400, {("", "not_dynamic")})


# ------------------------------------------------------------------------------ members


def _history(tenant) -> Segment:
    """pros at T0: a, b, c; at T0+1h: b leaves, d enters; at T0+2h: b comes back."""
    in_schema(tenant)
    people(("a", "pro"), ("b", "pro"), ("c", "pro"), ("d", "free"))
    segment = dynamic("pros", plan_is("pro"))
    evaluate(segment, T0)
    Customer.objects.filter(external_id="b").update(plan="free")
    Customer.objects.filter(external_id="d").update(plan="pro")
    evaluate(segment, T0 + HOUR)
    Customer.objects.filter(external_id="b").update(plan="pro")
    evaluate(segment, T0 + 2 * HOUR)
    return segment


def test_members_now_and_at_past_times_come_from_the_history(tenant):
    _history(tenant)
    admin = session(tenant)
    members = lambda **q: [m["external_id"] for m in admin.get(f"{URL}pros/members/", q).json()["results"]]  # noqa: E731
    assert members() == ["a", "b", "c", "d"]
    assert members(at=T0.isoformat()) == ["a", "b", "c"]
    assert members(at=(T0 + HOUR).isoformat()) == ["a", "c", "d"]
    assert members(at="2026-06-01T13:30:00") == ["a", "c", "d"]  # no offset: UTC
    assert members(at=(T0 - timedelta(seconds=1)).isoformat()) == []
    assert members(at="2026-06-01") == ["a", "b", "c", "d"]  # a date: the end of that UTC day
    assert members(at="2026-05-31") == []
    row = admin.get(f"{URL}pros/members/", {"at": (T0 + 30 * timedelta(minutes=1)).isoformat()}).json()["results"][1]
    assert (row["external_id"], row["entered_at"], row["exited_at"]) == (
        "b", "2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z")


def test_members_are_paged_by_customer_id_with_a_cursor(tenant):
    _history(tenant)
    admin = session(tenant)
    first = admin.get(f"{URL}pros/members/", {"limit": 3}).json()
    assert [m["external_id"] for m in first["results"]] == ["a", "b", "c"]
    second = admin.get(first["next"]).json()
    assert [m["external_id"] for m in second["results"]] == ["d"] and second["next"] is None


@pytest.mark.parametrize("query,expected", [
    ({"at": "yesterday"}, {("at", "invalid_datetime")}),
    ({"at": "2026-13-01"}, {("at", "invalid_datetime")}),
    ({"at": "2030-01-01T00:00:00Z"}, {("at", "in_future")}),
    ({"at": "2030-01-01"}, {("at", "in_future")}),
    ({"cursor": "garbage"}, {("cursor", "invalid_cursor")}),
    ({"limit": "0"}, {("limit", "invalid_value")}),
    ({"limit": "5000"}, {("limit", "invalid_value")}),
])
def test_bad_member_queries_are_400_with_their_path(tenant, query, expected):
    _history(tenant)
    response = session(tenant).get(f"{URL}pros/members/", query)
    assert (response.status_code, problems(response)) == (400, expected)


def test_member_rows_mask_personal_data_without_view_pii(tenant):
    in_schema(tenant)
    ada = Customer.objects.create(external_id="u1", email="ada@example.test", name="Ada Lovelace")
    static("vip", [ada])
    viewer = session(tenant, "viewer").get(f"{URL}vip/members/").json()["results"][0]
    marketer = session(tenant, "marketer").get(f"{URL}vip/members/").json()["results"][0]
    assert (viewer["email"], viewer["name"], viewer["customer_id"]) == ("a***@example.test", "A***", ada.pk)
    assert (marketer["email"], marketer["name"]) == ("ada@example.test", "Ada Lovelace")


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_escapes_formulas_masks_pii_and_is_audited(tenant):
    """Cells starting with = + - @ tab or CR get a leading apostrophe; analysts (export, no
    PII) get masked emails; marketers (no data.export) get 403; each export is audited."""
    in_schema(tenant)
    evil = [Customer.objects.create(external_id=ext, email=f"u{i}@example.test", name=name)
            for i, (ext, name) in enumerate([("=1+1", "@SUM(A1)"), ("+cmd", "-2"), ("\tx", "\rY"), ("plain", "Ada")])]
    static("vip", evil)
    rows = _csv(session(tenant).get(f"{URL}vip/members/export/"))
    assert rows[0] == ["customer_id", "external_id", "email", "name", "entered_at"]
    assert [r[1:4] for r in rows[1:]] == [
        ["'=1+1", "u0@example.test", "'@SUM(A1)"], ["'+cmd", "u1@example.test", "'-2"],
        ["'\tx", "u2@example.test", "'\rY"], ["plain", "u3@example.test", "Ada"]]
    analyst = _csv(session(tenant, "analyst").get(f"{URL}vip/members/export/"))
    assert [r[2:4] for r in analyst[1:]][-1] == ["u***@example.test", "A***"]
    assert session(tenant, "marketer").get(f"{URL}vip/members/export/").status_code == 403
    in_schema(tenant)
    assert AuditEvent.objects.filter(action="segment.members_exported", target_label="vip").count() == 2


def test_csv_export_at_a_past_time_streams_many_batches(tenant):
    segment = _history(tenant)
    rows = _csv(session(tenant).get(f"{URL}pros/members/export/", {"at": (T0 + HOUR).isoformat()}))
    assert [r[1] for r in rows[1:]] == ["a", "c", "d"]
    in_schema(tenant)
    batches = list(member_batches(segment=segment, batch=1))
    assert [[r.customer.external_id for r in b] for b in batches] == [["a"], ["b"], ["c"], ["d"]]


# ------------------------------------------------------------------------------ static members


def test_static_members_add_and_remove_by_id_and_external_id_report_unknown_items(tenant):
    in_schema(tenant)
    a, b, c = people(("a", ""), ("b", ""), ("c", ""))
    static("vip", [c])
    admin = session(tenant)
    response = post(admin, f"{URL}vip/members/", {"add": [a.pk, "b", "ghost", 99999999], "remove": ["c"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["added"], body["removed"], body["size"]) == (2, 1, 2)
    assert [(u["path"], u["code"]) for u in body["unmatched"]] == [("add[2]", "unknown_customer"),
                                                                    ("add[3]", "unknown_customer")]
    assert [m["external_id"] for m in admin.get(f"{URL}vip/members/").json()["results"]] == ["a", "b"]
    again = post(admin, f"{URL}vip/members/", {"add": ["a"]}).json()
    assert (again["added"], again["size"]) == (0, 2)


@pytest.mark.parametrize("body,expected", [
    ({"add": ["ghost"]}, {("add[0]", "unknown_customer")}),
    ({"add": [1.5, True, None, ""]}, {("add[0]", "invalid_type"), ("add[1]", "invalid_type"),
                                     ("add[2]", "invalid_type"), ("add[3]", "invalid_type")}),
    ({"add": "a"}, {("add", "not_a_list")}),
    ({}, {("", "required")}),
    ({"add": ["a"], "remove": ["a"]}, {("remove", "conflict")}),
    ({"add": ["a"], "delete": ["b"]}, {("delete", "unknown_field")}),
    ('{"add": [', {("", "parse_error")}),
])
def test_bad_static_member_input_writes_nothing(tenant, body, expected):
    in_schema(tenant)
    people(("a", ""), ("b", ""))
    static("vip", [])
    response = post(session(tenant), f"{URL}vip/members/", body)
    assert (response.status_code, problems(response)) == (400, expected)
    in_schema(tenant)
    assert not Membership.objects.exists() and not MembershipChange.objects.exists()


def test_adding_members_to_a_rule_segment_is_409_not_static(tenant):
    in_schema(tenant)
    people(("a", "pro"))
    dynamic("pros", plan_is("pro"))
    response = post(session(tenant), f"{URL}pros/members/", {"add": ["a"]})
    assert (response.status_code, problems(response)) == (409, {("", "not_static")})
    upload = session(tenant).post(f"{URL}pros/members/upload/", {"file": SimpleUploadedFile("m.csv", b"a\n")})
    assert (upload.status_code, problems(upload)) == (409, {("", "not_static")})
    in_schema(tenant)
    assert not Membership.objects.exists()


def test_csv_upload_adds_by_external_id_or_email_and_reports_rows(tenant):
    """Header `email` is skipped (row 1); values match external ids, then emails
    (case-insensitive); unknown and ambiguous rows are reported with their row number."""
    in_schema(tenant)
    Customer.objects.create(external_id="a", email="ann@example.test")
    Customer.objects.create(external_id="b", email="bob@example.test")
    Customer.objects.create(external_id="t1", email="twin@example.test")
    Customer.objects.create(external_id="t2", email="Twin@example.test")
    static("vip", [])
    content = "email\r\na\r\nBOB@example.test\r\n\r\nghost@example.test\r\ntwin@example.test\r\nnobody\r\n"
    response = session(tenant).post(f"{URL}vip/members/upload/",
                                    {"file": SimpleUploadedFile("members.csv", ("\ufeff" + content).encode())})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["rows"], body["matched"], body["added"], body["size"]) == (5, 2, 2, 2)
    assert [(u["row"], u["value"], u["code"]) for u in body["unmatched"]] == [
        (5, "ghost@example.test", "unknown_customer"), (6, "twin@example.test", "ambiguous_email"),
        (7, "nobody", "unknown_customer")]
    in_schema(tenant)
    assert set(Membership.objects.values_list("customer__external_id", "source")) == {("a", "import"), ("b", "import")}


def test_csv_upload_matches_emails_only_for_actors_who_see_personal_data(tenant):
    """Without customers.view_pii an upload cannot probe for addresses: emails are not matched."""
    in_schema(tenant)
    Customer.objects.create(external_id="a", email="ann@example.test")
    static("vip", [])
    role = role_create(actor=membership_of(tenant, "admin@alpha.test"), name="Segment editor",
                       permissions=["segments.view", "segments.edit"])
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, "editor@alpha.test", role.key))
    response = client.post(f"{URL}vip/members/upload/", {"file": SimpleUploadedFile("m.csv", b"ann@example.test\n")})
    assert (response.status_code, problems(response)) == (400, {("file.row[1]", "pii_required")})
    in_schema(tenant)
    assert not Membership.objects.exists()


@pytest.mark.parametrize("content,expected", [
    (b"\xff\xfe\x00a", {("file", "not_utf8")}),
    (b"", {("file", "empty")}),
    (b"external_id\n", {("file", "empty")}),
    (b"a,b\nc,d\n", {("file.row[1]", "too_many_columns")}),
])
def test_bad_uploads_are_400_and_write_nothing(tenant, content, expected):
    in_schema(tenant)
    people(("a", ""))
    static("vip", [])
    response = session(tenant).post(f"{URL}vip/members/upload/", {"file": SimpleUploadedFile("m.csv", content)})
    assert (response.status_code, problems(response)) == (400, expected)
    no_file = session(tenant).post(f"{URL}vip/members/upload/", {})
    assert problems(no_file) == {("file", "required")}
    in_schema(tenant)
    assert not Membership.objects.exists()


# ------------------------------------------------------------------------------ changes and versions


def test_changes_feed_is_ordered_and_continues_after_an_id(tenant):
    _history(tenant)
    admin = session(tenant)
    feed = admin.get(f"{URL}pros/changes/").json()
    assert [(c["external_id"], c["change"], c["at"]) for c in feed["results"]] == [
        ("a", "entered", "2026-06-01T12:00:00Z"), ("b", "entered", "2026-06-01T12:00:00Z"),
        ("c", "entered", "2026-06-01T12:00:00Z"), ("b", "exited", "2026-06-01T13:00:00Z"),
        ("d", "entered", "2026-06-01T13:00:00Z"), ("b", "entered", "2026-06-01T14:00:00Z")]
    since = admin.get(f"{URL}pros/changes/", {"since": "2026-06-01T13:00:00Z"}).json()
    assert [(c["external_id"], c["change"]) for c in since["results"]] == [("b", "exited"), ("d", "entered"),
                                                                            ("b", "entered")]
    page = admin.get(f"{URL}pros/changes/", {"limit": 4}).json()
    assert len(page["results"]) == 4 and page["last_id"] == page["results"][-1]["id"]
    rest = admin.get(page["next"]).json()
    assert [c["change"] for c in rest["results"]] == ["entered", "entered"] and rest["next"] is None
    assert admin.get(f"{URL}pros/changes/", {"after": rest["last_id"]}).json()["results"] == []
    bad = admin.get(f"{URL}pros/changes/", {"since": "last week", "after": "-1"})
    assert (bad.status_code, problems(bad)) == (400, {("since", "invalid_datetime")})
    assert problems(admin.get(f"{URL}pros/changes/", {"after": "x"})) == {("after", "invalid_value")}


def test_version_diff_is_structural_and_textual(tenant):
    in_schema(tenant)
    actor = membership_of(tenant, "admin@alpha.test")
    segment, _ = segment_create(actor=actor, key="pros", name="Pros", definition=plan_is("pro"), now=NOW)
    admin = session(tenant)
    v2 = {"version": 1, "match": "any", "conditions": [
        {"type": "trait", "field": "plan", "op": "in", "value": ["pro", "team"]},
        {"type": "trait", "field": "country", "op": "eq", "value": "GB"}]}
    assert patch(admin, f"{URL}pros/", {"definition": v2}).status_code == 200
    diff = admin.get(f"{URL}pros/versions/diff/", {"from": 1, "to": 2}).json()
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    assert diff["added"] == [{"path": "conditions[1]", "value": v2["conditions"][1]}]
    assert diff["removed"] == []
    assert diff["changed"] == [{"path": "conditions[0].op", "from": "eq", "to": "in"},
                               {"path": "conditions[0].value", "from": "pro", "to": ["pro", "team"]},
                               {"path": "match", "from": "all", "to": "any"}]
    assert diff["text"].startswith("--- v1\n+++ v2\n") and '-  "match": "all",' in diff["text"]
    same = admin.get(f"{URL}pros/versions/diff/", {"from": 2, "to": 2}).json()
    assert (same["added"], same["removed"], same["changed"], same["text"]) == ([], [], [], "")
    missing = admin.get(f"{URL}pros/versions/diff/", {"from": 1, "to": 7})
    assert (missing.status_code, problems(missing)) == (404, {("to", "unknown_version")})
    bad = admin.get(f"{URL}pros/versions/diff/", {"from": "one"})
    assert (bad.status_code, problems(bad)) == (400, {("from", "invalid_value"), ("to", "required")})


# ------------------------------------------------------------------------------ explain


def test_explain_says_why_a_customer_is_in_or_out(tenant):
    in_schema(tenant)
    ann, bob = people(("ann", "pro"), ("bob", "free"))
    segment = dynamic("pros", plan_is("pro"))
    evaluate(segment, T0)
    admin = session(tenant)
    inside = admin.get(f"{URL}pros/explain/{ann.pk}/").json()
    assert (inside["member"], inside["matches"], inside["entered_at"]) == (True, True, "2026-06-01T12:00:00Z")
    assert inside["tree"]["conditions"][0]["fact"]["value"] == "pro"
    outside = admin.get(f"{URL}pros/explain/{bob.pk}/").json()
    assert (outside["member"], outside["matches"], outside["tree"]["result"]) == (False, False, False)
    assert outside["tree"]["conditions"][0]["fact"]["value"] == "free"
    assert admin.get(f"{URL}pros/explain/99999999/").status_code == 404


def test_explain_reads_segment_memberships_for_segment_conditions(tenant):
    in_schema(tenant)
    ann, bob = people(("ann", ""), ("bob", ""))
    static("vip", [ann])
    dynamic("vip-fans", {"version": 1, "match": "all", "conditions": [{"type": "segment", "segment": "vip", "op": "in"}]})
    Segment.objects.filter(key="vip-fans").update(references=["vip"])
    admin = session(tenant)
    assert admin.get(f"{URL}vip-fans/explain/{ann.pk}/").json()["matches"] is True
    assert admin.get(f"{URL}vip-fans/explain/{bob.pk}/").json()["matches"] is False
    hand = admin.get(f"{URL}vip/explain/{ann.pk}/").json()
    assert (hand["member"], hand["matches"], hand["tree"]) == (True, None, None)


def test_explain_masks_personal_facts_without_view_pii(tenant):
    in_schema(tenant)
    ada = Customer.objects.create(external_id="ada", email="ada@example.test", name="Ada Lovelace")
    dynamic("adas", {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "email", "op": "ends_with", "value": "@example.test"},
        {"type": "trait", "field": "name", "op": "is_set"}]})
    viewer = session(tenant, "viewer").get(f"{URL}adas/explain/{ada.pk}/").json()
    facts = [c["fact"] for c in viewer["tree"]["conditions"]]
    assert [(f["value"], f.get("masked")) for f in facts] == [("a***@example.test", True), ("A***", True)]
    assert (viewer["customer"]["email"], viewer["customer"]["name"], viewer["matches"]) == (
        "a***@example.test", "A***", True)
    marketer = session(tenant, "marketer").get(f"{URL}adas/explain/{ada.pk}/").json()
    assert [c["fact"]["value"] for c in marketer["tree"]["conditions"]] == ["ada@example.test", "Ada Lovelace"]
    assert marketer["customer"]["email"] == "ada@example.test"


# ------------------------------------------------------------------------------ snapshot, overlap, schema


def test_snapshot_freezes_members_now(tenant):
    in_schema(tenant)
    a, b = people(("a", ""), ("b", ""))
    static("vip", [a, b])
    admin = session(tenant)
    response = post(admin, f"{URL}vip/snapshot/", {"key": "vip-june", "name": "VIP in June"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["source"], body["size"], body["frozen_at"]) == ("snapshot", "vip", 2,
                                                                               "2026-06-10T12:00:00Z")
    post(admin, f"{URL}vip/members/", {"remove": ["a"]})
    assert [m["external_id"] for m in admin.get(f"{URL}vip-june/members/").json()["results"]] == ["a", "b"]
    duplicate = post(admin, f"{URL}vip/snapshot/", {"key": "vip-june", "name": "Again"})
    assert (duplicate.status_code, problems(duplicate)) == (400, {("key", "duplicate")})
    bad = post(admin, f"{URL}vip/snapshot/", {"name": 5})
    assert (bad.status_code, problems(bad)) == (400, {("key", "required")})


def test_overlap_counts_by_hand(tenant):
    """a = {1,2,3,4}, b = {3,4,5}, c = {4,6}: a∩b = 2, a∩c = 1, b∩c = 1; exclusive a = 2
    (1, 2), b = 1 (5), c = 1 (6); union 6."""
    in_schema(tenant)
    c = people(*[(f"c{i}", "") for i in range(1, 7)])
    static("a", c[0:4])
    static("b", c[2:5])
    static("cc", [c[3], c[5]])
    response = session(tenant, "viewer").get(f"{URL}overlap/", {"keys": "a,b,cc"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["matrix"] == [[4, 2, 1], [2, 3, 1], [1, 1, 2]]
    assert [(s["key"], s["size"], s["exclusive"]) for s in body["segments"]] == [("a", 4, 2), ("b", 3, 1), ("cc", 2, 1)]
    assert body["union"] == 6
    assert body["jaccard"][0][1] == round(2 / 5, 4) and body["jaccard"][0][0] == 1.0


@pytest.mark.parametrize("query,status,expected", [
    ({}, 400, {("keys", "required")}),
    ({"keys": "a"}, 400, {("keys", "required")}),
    ({"keys": ",".join(f"k{i}" for i in range(11))}, 400, {("keys", "too_many")}),
    ({"keys": "a,nope,a"}, 400, {("keys[1]", "unknown_segment"), ("keys[2]", "duplicate")}),
    ({"keys": "a,b", "at": "soon"}, 400, {("at", "invalid_datetime")}),
])
def test_bad_overlap_queries(tenant, query, status, expected):
    in_schema(tenant)
    static("a", [])
    static("b", [])
    response = session(tenant).get(f"{URL}overlap/", query)
    assert (response.status_code, problems(response)) == (status, expected)


def test_schema_is_the_rule_languages_json_schema(tenant):
    from segments.rules.schema import definition_schema

    response = session(tenant, "viewer").get(f"{URL}schema/")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(definition_schema()))


def test_openapi_documents_the_segment_routes(tenant):
    response = session(tenant).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in ("/api/v1/segments/", "/api/v1/segments/{key}/", "/api/v1/segments/{key}/members/",
                 "/api/v1/segments/{key}/members/export/", "/api/v1/segments/{key}/explain/{customer_id}/",
                 "/api/v1/segments/overlap/", "/api/v1/segments/{key}/versions/diff/"):
        assert path in paths, path


# ------------------------------------------------------------------------------ isolation


KEYED_ROUTES = [
    ("get", "{key}/"), ("patch", "{key}/"), ("delete", "{key}/"), ("post", "{key}/preview/"),
    ("post", "{key}/evaluate/"), ("get", "{key}/members/"), ("post", "{key}/members/"),
    ("get", "{key}/members/export/"), ("post", "{key}/members/upload/"), ("get", "{key}/changes/"),
    ("get", "{key}/versions/"), ("get", "{key}/versions/diff/?from=1&to=1"), ("get", "{key}/explain/{cid}/"),
    ("post", "{key}/snapshot/"),
]


def test_another_workspaces_segment_is_not_found_on_every_route(tenant, other_tenant):
    """beta's segment key on alpha's host: 404 on every segment route; nothing in beta changes."""
    in_schema(other_tenant)
    beta_customer = Customer.objects.create(external_id="beta-1", plan="pro")
    beta = static("beta-only", [beta_customer])
    in_schema(tenant)
    alpha_customer = Customer.objects.create(external_id="alpha-1")
    admin = session(tenant)
    bodies = {"patch": {"name": "Mine"}, "post": {"add": ["beta-1"], "key": "stolen", "name": "Stolen"}}
    for method, route in KEYED_ROUTES:
        url = URL + route.format(key="beta-only", cid=alpha_customer.pk)
        response = getattr(admin, method)(url, json.dumps(bodies.get(method, {})), content_type="application/json") \
            if method != "get" else admin.get(url)
        assert response.status_code == 404, (method, url, response.status_code)
        assert problems(response) == {("", "not_found")}
    overlap = admin.get(f"{URL}overlap/", {"keys": "beta-only,other"})
    assert problems(overlap) == {("keys[0]", "unknown_segment"), ("keys[1]", "unknown_segment")}
    in_schema(other_tenant)
    beta.refresh_from_db()
    assert (beta.name, beta.size, Membership.objects.filter(segment=beta).count()) == ("Beta-Only", 1, 1)


def test_another_workspaces_customer_id_is_not_found_in_explain(tenant, other_tenant):
    in_schema(other_tenant)
    beta_customer = Customer.objects.create(external_id="beta-1", plan="pro")
    in_schema(tenant)
    dynamic("pros", plan_is("pro"))
    Customer.objects.filter(pk=beta_customer.pk).delete()  # make sure the id is free in alpha
    response = session(tenant).get(f"{URL}pros/explain/{beta_customer.pk}/")
    assert (response.status_code, problems(response)) == (404, {("", "not_found")})


def test_ids_beyond_the_integer_range_are_unknown_not_errors(tenant):
    """Out-of-range ids in bodies, paths and cursors name nobody: 4xx, never a 500."""
    in_schema(tenant)
    static("vip", [])
    dynamic("pros", plan_is("pro"))
    admin = session(tenant)
    huge = 10**20
    added = post(admin, f"{URL}vip/members/", {"add": [huge]})
    assert (added.status_code, problems(added)) == (400, {("add[0]", "unknown_customer")})
    assert admin.get(f"{URL}pros/explain/{huge}/").status_code == 404
    assert admin.get(f"{URL}pros/changes/", {"after": str(huge)}).json()["results"] == []
