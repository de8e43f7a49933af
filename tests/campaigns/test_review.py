"""The review cycle: which segments are in the queue and why, keep / merge / archive with
their guards and history, the owner's view, the quarterly reminder, pages and API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from campaigns.models import Campaign, Play, SegmentReview, WebhookEndpoint
from campaigns.plays.services import play_create
from campaigns.review import review_archive, review_keep, review_merge, review_queue, review_reminders_send
from campaigns.services.campaigns import campaign_create
from common.errors import DomainError, Forbidden
from segments.models import Segment
from segments.services import segment_create, static_members_add
from customers.models import Customer
from django.test import Client

from tests.conftest import host_of, make_member, session

LATER = timezone.now() + timedelta(days=100)  # every segment made in a test is 100 days old by then


@pytest.fixture
def workspace(in_tenant, tenant):
    admin = make_member(tenant, "review-admin@alpha.test", "admin").memberships.get(tenant=tenant)
    marketer = make_member(tenant, "review-owner@alpha.test", "marketer").memberships.get(tenant=tenant)
    now = timezone.now()
    people = [Customer.objects.create(external_id=f"c{i}") for i in range(60)]
    made = {}
    for key, owner in (("old", marketer), ("busy", marketer), ("twin", admin), ("small", admin)):
        segment, _ = segment_create(actor=owner, key=key, name=key.title(), kind="static", now=now)
        made[key] = segment
    static_members_add(actor=admin, segment=made["old"], customer_ids=[c.pk for c in people], now=now)
    static_members_add(actor=admin, segment=made["twin"], customer_ids=[c.pk for c in people], now=now)
    static_members_add(actor=admin, segment=made["busy"], customer_ids=[c.pk for c in people[:50]], now=now)
    static_members_add(actor=admin, segment=made["small"], customer_ids=[people[0].pk], now=now)
    Segment.objects.filter(key="busy").update(last_used_at=LATER - timedelta(days=1))
    play = play_create(actor=admin, name="Win back", segment_id=made["busy"].pk, tactic_type="email",
                       kpi="conversion_rate")
    return {"admin": admin, "marketer": marketer, "play": play, **made}


def client_of(tenant, membership) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(membership.user)
    return client


def reasons(items) -> dict:
    return {item.segment.key: item.codes for item in items}


def test_the_queue_says_why(workspace):
    queue = reasons(review_queue(now=LATER))
    assert queue["old"] == ["unused", "near_duplicate", "no_activation"]
    assert queue["twin"] == ["unused", "near_duplicate", "no_activation"]
    assert queue["small"] == ["unused", "too_small", "no_activation"]
    assert "busy" not in queue  # used yesterday, a play binds it, 50 members (5/6 of the others)
    mine = reasons(review_queue(now=LATER, owner_id=workspace["marketer"].user_id))
    assert set(mine) == {"old"}
    # a young segment is not flagged for having no activation yet
    assert "no_activation" not in reasons(review_queue(now=timezone.now() + timedelta(days=3))).get("old", [])


def test_kept_segments_leave_the_queue_until_their_day(workspace):
    review = review_keep(actor=workspace["marketer"], segment=workspace["old"], note="Quarterly newsletter list",
                         next_review_at=(LATER + timedelta(days=30)).date(), now=LATER)
    assert review.reasons == ["unused", "near_duplicate", "no_activation"] and review.decision == "kept"
    assert "old" not in reasons(review_queue(now=LATER))
    back = reasons(review_queue(now=LATER + timedelta(days=30)))
    assert back["old"][-1] == "review_due"
    assert AuditEvent.objects.filter(action="segment.review_kept").exists()


@pytest.mark.parametrize("note, day, path, code", [
    ("", None, "note", "required"),
    ("x" * 2001, None, "note", "required"),
    ("ok", "2020-01-01", "next_review_at", "out_of_range"),
    ("ok", "not a date", "next_review_at", "out_of_range"),
])
def test_keeping_needs_a_note_and_a_day_ahead(workspace, note, day, path, code):
    with pytest.raises(DomainError) as raised:
        review_keep(actor=workspace["admin"], segment=workspace["old"], note=note, next_review_at=day, now=LATER)
    assert (raised.value.problems[0].path, raised.value.problems[0].code) == (path, code)
    assert not SegmentReview.objects.exists()


def test_archive_is_refused_while_something_uses_the_segment(workspace):
    with pytest.raises(DomainError) as raised:
        review_archive(actor=workspace["admin"], segment=workspace["busy"], note="", now=LATER)
    assert raised.value.problems[0].code == "conflict" and "Win back" in raised.value.problems[0].message
    review_archive(actor=workspace["admin"], segment=workspace["small"], note="One customer", now=LATER)
    assert Segment.objects.get(key="small").status == "archived"
    assert SegmentReview.objects.get(segment__key="small").decision == "archived"


def test_merge_moves_plays_campaigns_and_webhooks_then_archives(workspace):
    admin, busy = workspace["admin"], workspace["busy"]
    draft = campaign_create(actor=admin, name="Hello", segment_id=busy.pk, channel="email",
                            schedule={"kind": "once", "at": (timezone.now() + timedelta(days=1)).isoformat()},
                            content={"subject": "Hi", "body": "Hello"})
    hook = WebhookEndpoint.objects.create(segment=busy, segment_label=busy.name, url="http://127.0.0.1:9/h",
                                          secret="whsec_eA==", events=["entered"])
    review = review_merge(actor=admin, segment=busy, into="old", note="Same people", now=LATER)
    assert review.merged_into.key == "old" and Segment.objects.get(key="busy").status == "archived"
    assert Play.objects.get(pk=workspace["play"].pk).segment.key == "old"
    assert Campaign.objects.get(pk=draft.pk).segment_label == "Old"
    assert WebhookEndpoint.objects.get(pk=hook.pk).segment.key == "old"


def test_merge_is_refused_into_itself_an_unknown_segment_or_while_sending(workspace):
    for into, code in (("busy", "invalid_value"), ("ghost", "unknown_segment"), (5, "unknown_segment")):
        with pytest.raises(DomainError) as raised:
            review_merge(actor=workspace["admin"], segment=workspace["busy"], into=into, note="", now=LATER)
        assert raised.value.problems[0].code == code
    Campaign.objects.create(name="Live", segment=workspace["busy"], channel="email", status="running",
                            schedule={}, content={})
    with pytest.raises(DomainError) as raised:
        review_merge(actor=workspace["admin"], segment=workspace["busy"], into="old", note="", now=LATER)
    assert raised.value.problems[0].code == "conflict"
    assert Segment.objects.get(key="busy").status == "active" and not SegmentReview.objects.exists()


def test_only_segment_editors_decide(workspace, tenant):
    viewer = make_member(tenant, "review-viewer@alpha.test", "viewer").memberships.get(tenant=tenant)
    with pytest.raises(Forbidden):
        review_keep(actor=viewer, segment=workspace["old"], note="mine", now=LATER)


def test_the_quarterly_reminder_emails_each_owner_their_segments(workspace):
    mail.outbox.clear()
    assert review_reminders_send(now=LATER, workspace="Alpha", link="http://alpha.localhost/segments/review/") == 2
    by_owner = {m.to[0]: m for m in mail.outbox}
    assert set(by_owner) == {"review-owner@alpha.test", "review-admin@alpha.test"}
    assert "Old (old)" in by_owner["review-owner@alpha.test"].body
    assert "Twin (twin)" not in by_owner["review-owner@alpha.test"].body


def test_the_page_shows_the_queue_and_takes_decisions(workspace, tenant):
    connection.set_schema_to_public()
    import time_machine

    with time_machine.travel(LATER, tick=False):
        owner = client_of(tenant, workspace["marketer"])
        page = owner.get("/segments/review/")
        assert page.status_code == 200 and page.content.count(b'data-testid="review-item"') == 1  # mine: "old"
        everyone = owner.get("/segments/review/?owner=all").content
        assert everyone.count(b'data-testid="review-item"') == 3 and b'data-code="too_small"' in everyone
        kept = owner.post("/segments/review/old/keep/", {"note": "Newsletter", "owner": "me"})
        assert kept.status_code == 302 and kept["Location"].endswith("/segments/review/?owner=me")
        refused = owner.post("/segments/review/small/archive/", {"note": "x" * 2001})
        assert refused.status_code == 302
        assert b"Newsletter" in owner.get("/segments/review/?owner=all").content  # the history
        viewer = session(tenant, "viewer")
        assert viewer.get("/segments/review/").status_code == 200
        assert viewer.post("/segments/review/old/keep/", {"note": "x"}).status_code == 403
        assert owner.post("/segments/review/ghost/keep/", {"note": "x"}).status_code == 302
    connection.set_tenant(tenant)
    assert list(SegmentReview.objects.values_list("segment__key", "decision")) == [("old", "kept")]


def test_the_api_lists_and_decides(workspace, tenant, other_tenant):
    connection.set_schema_to_public()
    import time_machine

    with time_machine.travel(LATER, tick=False):
        admin = client_of(tenant, workspace["admin"])
        queue = admin.get("/api/v1/segments/review/").json()["results"]
        assert {item["segment"] for item in queue} == {"old", "twin", "small"}
        assert [r["code"] for r in next(i for i in queue if i["segment"] == "small")["reasons"]] == [
            "unused", "too_small", "no_activation"]
        assert {i["segment"] for i in admin.get("/api/v1/segments/review/?owner=me").json()["results"]} == {"twin",
                                                                                                          "small"}
        merged = admin.post("/api/v1/segments/review/twin/", {"decision": "merge", "into": "old", "note": "Same"},
                            content_type="application/json")
        assert merged.status_code == 201 and merged.json()["merged_into"] == "old"
        bad = admin.post("/api/v1/segments/review/small/", {"decision": "keep", "next_review_at": "2020-01-01",
                                                             "note": "x"}, content_type="application/json")
        assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "next_review_at"
        assert admin.post("/api/v1/segments/review/twin/", {"decision": "archive"},
                          content_type="application/json").status_code == 404  # archived by the merge
        stranger = session(other_tenant, "admin")
        assert stranger.post("/api/v1/segments/review/old/", {"decision": "archive"},
                             content_type="application/json").status_code == 404


def test_the_quarterly_task_runs_in_the_tenant_and_beat_schedules_it(workspace, settings):
    from campaigns.tasks import review_reminders

    mail.outbox.clear()
    assert review_reminders(now_iso=LATER.isoformat()) == 2
    assert "/segments/review/?owner=me" in mail.outbox[0].body
    schedule = settings.CELERY_BEAT_SCHEDULE["segment-review-quarterly"]
    assert schedule["task"] == "campaigns.dispatch_review_reminders"
    assert schedule["schedule"].month_of_year == {1, 4, 7, 10} and schedule["schedule"].day_of_month == {1}


def test_owners_see_a_notice_on_the_workspace_home(workspace, tenant):
    connection.set_schema_to_public()
    import time_machine

    with time_machine.travel(LATER, tick=False):
        notice = client_of(tenant, workspace["marketer"]).get("/segments/review/notice/")
        assert b'data-testid="review-notice"' in notice.content and b"1 of your segments is due" in notice.content
        assert b"review-notice" not in session(tenant, "viewer").get("/segments/review/notice/").content
        assert b"/segments/review/notice/" in client_of(tenant, workspace["marketer"]).get("/").content
