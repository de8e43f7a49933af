"""Email campaigns on real PostgreSQL with Django's locmem backend: consent enforced, the
holdout never sent, the frequency cap, never twice across retries and a worker that dies
mid-batch, on-entry campaigns once per entry, unsubscribe, a deleted segment pauses."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from audit.models import AuditEvent
from campaigns import scheduling, sending
from campaigns.models import Assignment, Campaign, Send
from campaigns.services.campaigns import (
    campaign_cancel, campaign_create, campaign_launch, campaign_pause, campaign_update, campaigns_segment_gone,
)
from campaigns.services.unsubscribe import unsubscribe_apply
from campaigns.tasks import send_occasion
from common.errors import DomainError
from common.http import http_status
from customers.models import Consent, ConsentChange
from segments import engine
from segments.services import segment_delete
from tests.campaigns.conftest import T0, people, static_segment

EMAIL = {"subject": "Hi {{ first_name|default:'there' }}", "body": "Hello {{ first_name }}, try {{ plan }}."}


def clock():
    return T0


def email_campaign(actor, segment, **extra) -> Campaign:
    fields = {"name": "Welcome", "segment_id": segment.pk, "channel": "email",
              "schedule": {"kind": "once", "at": T0.isoformat()}, "content": EMAIL} | extra
    return campaign_create(actor=actor, **fields)


def launched(actor, segment, **extra) -> Campaign:
    campaign = email_campaign(actor, segment, **extra)
    campaign_launch(actor=actor, campaign=campaign, now=T0)
    occasions = scheduling.due_occasions(now=T0)
    if extra.get("schedule", {}).get("kind") != "on_entry":
        assert occasions == [(campaign.pk, "once")]
    campaign.refresh_from_db()
    return campaign


def run(campaign, occasion="once", **kwargs):
    return sending.run_occasion(campaign_id=campaign.pk, occasion=occasion, now=T0, clock=clock,
                                sleep=lambda s: None, **kwargs)


def recipients() -> list[str]:
    return sorted(to for message in mail.outbox for to in message.to)


def test_only_customers_who_granted_email_consent_are_sent_to(alpha_admin):
    granted = people(3, prefix="yes")
    withdrawn = people(2, prefix="no", consent=False)
    unknown = people(2, prefix="never", consent=None)
    campaign = launched(alpha_admin, static_segment("all", granted + withdrawn + unknown))
    result = run(campaign)
    assert (result.sent, result.suppressed) == (3, 4)
    assert recipients() == [f"yes{i}@example.com" for i in range(3)]
    assert set(Send.objects.filter(campaign=campaign, status="suppressed").values_list("reason", flat=True)) == {
        "no_consent"}
    message = mail.outbox[0]
    assert message.subject == "Hi Person0" and "/unsubscribe/" in message.body
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")


def test_holdout_members_are_assigned_but_never_sent(alpha_admin):
    crowd = people(200)
    campaign = launched(alpha_admin, static_segment("crowd", crowd), holdout_percent=30)
    run(campaign)
    holdout = set(Assignment.objects.filter(campaign=campaign, group="holdout").values_list("customer__email", flat=True))
    assert 30 < len(holdout) < 90  # 30% of 200, loosely
    assert not holdout & set(recipients())
    assert len(recipients()) == 200 - len(holdout)
    assert Assignment.objects.filter(campaign=campaign).count() == 200


def test_a_retried_task_never_sends_twice(alpha_admin):
    campaign = launched(alpha_admin, static_segment("five", people(5)))
    first = send_occasion.run(campaign_id=campaign.pk, occasion="once", now_iso=T0.isoformat())
    Campaign.objects.filter(pk=campaign.pk).update(status="running")  # as if the retry raced completion
    second = send_occasion.run(campaign_id=campaign.pk, occasion="once", now_iso=T0.isoformat())
    assert (first["sent"], second["sent"]) == (5, 0)
    assert len(mail.outbox) == 5 and len(set(recipients())) == 5


class WorkerDied(BaseException):
    """What a killed worker looks like to the code after it: nothing else runs."""


def test_a_worker_killed_mid_batch_does_not_resend_on_retry(alpha_admin, monkeypatch):
    campaign = launched(alpha_admin, static_segment("six", people(6)))
    real, calls = sending._deliver, []

    def dies_on_the_fourth(backend, message):
        calls.append(message.to[0])
        if len(calls) == 4:
            raise WorkerDied()  # after the claim, before the backend took the message
        return real(backend, message)

    monkeypatch.setattr(sending, "_deliver", dies_on_the_fourth)
    with pytest.raises(WorkerDied):
        run(campaign)
    assert len(mail.outbox) == 3
    assert Send.objects.get(campaign=campaign, status="queued").customer.email == calls[3]
    monkeypatch.setattr(sending, "_deliver", real)
    retry = run(campaign)  # the redelivered task
    assert (retry.sent, retry.unknown) == (2, 1)
    assert len(mail.outbox) == 5 and len(set(recipients())) == 5 and calls[3] not in recipients()
    unknown = Send.objects.get(campaign=campaign, status="unknown")
    assert unknown.customer.email == calls[3] and "not resent" in unknown.error
    assert run(campaign).sent == 0


def test_a_concurrent_run_of_the_same_campaign_is_refused_while_one_holds_the_lock(alpha_admin):
    """Another connection (another worker) cannot take the campaign's run lock meanwhile."""
    from django.db import connection, connections

    campaign = launched(alpha_admin, static_segment("two", people(2)))
    key = f"{connection.schema_name}:campaign-send:{campaign.pk}"
    other = connections.create_connection("default")
    try:
        with sending._run_lock(campaign.pk) as got, other.cursor() as cursor:
            assert got
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
            assert cursor.fetchone()[0] is False
        with other.cursor() as cursor:  # released when the run ends
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0)), "
                           "pg_advisory_unlock(hashtextextended(%s, 0))", [key, key])
            assert cursor.fetchone() == (True, True)
    finally:
        other.close()


def test_the_frequency_cap_suppresses_extra_sends(alpha_admin):
    ada = people(1)
    campaign = launched(alpha_admin, static_segment("one", ada), cap_max_sends=2, cap_days=7)
    assert [run(campaign, occasion=f"run:{i}").sent for i in range(3)] == [1, 1, 0]
    assert Send.objects.get(campaign=campaign, occasion="run:2").reason == "frequency_cap"
    assert len(mail.outbox) == 2


def test_variants_render_their_own_content(alpha_admin):
    variants = [{"key": "segmented", "weight": 50, "content": {"subject": "For {{ plan }} teams"}},
                {"key": "generic", "weight": 50, "content": {"subject": "News"}}]
    campaign = launched(alpha_admin, static_segment("v", people(40, plan="pro")), variants=variants)
    run(campaign)
    by_variant = dict(Send.objects.filter(campaign=campaign).values_list("customer__email", "variant"))
    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert {by_variant[to] for to in subjects} == {"segmented", "generic"}
    assert all(subjects[to] == ("For pro teams" if by_variant[to] == "segmented" else "News") for to in subjects)


def test_batches_are_rate_limited(alpha_admin):
    campaign = launched(alpha_admin, static_segment("ten", people(10)))
    pauses = []
    sending.run_occasion(campaign_id=campaign.pk, occasion="once", now=T0, clock=clock, sleep=pauses.append,
                         batch=4, rate=2.0)
    assert len(mail.outbox) == 10
    assert len(pauses) == 2 and all(1.5 < p <= 2.0 for p in pauses)  # 4 per batch at 2/s ≈ 2 s each


def test_entry_triggered_campaigns_fire_once_per_entry(alpha_admin):
    ada, bo = people(2)
    segment = static_segment("trial", [ada])  # ada entered before launch: not sent
    campaign = launched(alpha_admin, segment, schedule={"kind": "on_entry"})
    assert campaign.status == "running"
    engine.members_add(segment=segment, customer_ids=[bo.pk], now=T0 + timedelta(minutes=1))
    first = scheduling.run_entries(campaign_id=campaign.pk, now=T0, clock=clock)
    again = scheduling.run_entries(campaign_id=campaign.pk, now=T0, clock=clock)
    assert (first["sent"], again["entries"]) == (1, 0)
    assert recipients() == ["c1@example.com"]
    engine.members_remove(segment=segment, customer_ids=[bo.pk], now=T0 + timedelta(minutes=2))
    engine.members_add(segment=segment, customer_ids=[bo.pk], now=T0 + timedelta(minutes=3))  # a new entry
    # A crash before the cursor moved: the outbox since launch is replayed.
    Campaign.objects.filter(pk=campaign.pk).update(entry_cursor=campaign.entry_cursor)
    scheduling.run_entries(campaign_id=campaign.pk, now=T0, clock=clock)
    assert recipients() == ["c1@example.com", "c1@example.com"]  # two entries, two sends, none repeated
    assert Send.objects.filter(campaign=campaign, customer=bo).count() == 2


def test_unsubscribe_withdraws_consent_once_and_stops_further_sends(alpha_admin):
    ada, bo = people(2)
    campaign = launched(alpha_admin, static_segment("news", [ada, bo]))
    # The token is signed with the wall clock's second: pinned, so the one built here and the
    # one in the email are the same even when a second ticks between them.
    with time_machine.travel(time.time(), tick=False):
        token = sending.unsubscribe_token(campaign, ada)
        assert run(campaign).sent == 2
    assert token in next(m.body for m in mail.outbox if m.to == [ada.email])
    assert unsubscribe_apply(token=token, now=T0 + timedelta(hours=1)) == {"changed": True, "customer_id": ada.pk}
    assert unsubscribe_apply(token=token, now=T0 + timedelta(hours=2))["changed"] is False
    assert not Consent.objects.get(customer=ada, channel="email").granted
    assert ConsentChange.objects.filter(customer=ada, granted=False, source=f"unsubscribe:campaign:{campaign.pk}").count() == 1
    assert run(campaign, occasion="run:next").sent == 1  # bo only
    with pytest.raises(DomainError) as error:
        unsubscribe_apply(token=token[:-2] + "xx", now=T0)
    assert error.value.problems[0].code == "invalid_token"


def test_a_campaign_whose_segment_is_deleted_pauses_with_a_clear_reason(alpha_admin):
    segment = static_segment("doomed", people(2))
    campaign = email_campaign(alpha_admin, segment, schedule={"kind": "recurring", "every": "daily", "time": "09:00"})
    campaign_launch(actor=alpha_admin, campaign=campaign, now=T0)
    segment_delete(actor=alpha_admin, segment=segment)
    assert campaigns_segment_gone(now=T0) == 1
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.segment_id is None
    assert campaign.pause_reason.startswith("Paused: its segment “Doomed” was deleted.")
    assert AuditEvent.objects.filter(action="campaign.paused", target_id=str(campaign.pk)).exists()
    with pytest.raises(DomainError) as error:
        campaign_launch(actor=alpha_admin, campaign=campaign, now=T0)
    assert error.value.problems[0].code == "segment_deleted"


def test_deleting_a_segment_pauses_its_campaigns_at_the_next_tick(alpha_admin, django_capture_on_commit_callbacks):
    """segments know nothing of campaigns: the campaigns tick (every minute) finds the
    campaigns whose segment is gone and pauses them before it sends anything."""
    from campaigns import scheduling

    segment = static_segment("doomed", people(2))
    campaign = email_campaign(alpha_admin, segment, schedule={"kind": "recurring", "every": "daily", "time": "09:00"})
    campaign_launch(actor=alpha_admin, campaign=campaign, now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        segment_delete(actor=alpha_admin, segment=segment)
    assert scheduling.tick(now=T0)["paused"] == 1
    campaign.refresh_from_db()
    assert campaign.status == "paused" and "was deleted" in campaign.pause_reason
    assert not Send.objects.filter(campaign=campaign).exists()


def test_bad_input_is_every_problem_with_its_path_and_nothing_is_written(alpha_admin):
    segment = static_segment("s", [])
    with pytest.raises(DomainError) as error:
        campaign_create(actor=alpha_admin, name="", segment_id=999_999, channel="email",
                        schedule={"kind": "recurring", "every": "weekly", "time": "25:00"},
                        content={"subject": "{% if %}", "body": "{{ x|safe }}"}, holdout_percent=70,
                        cap_max_sends=3, variants=[{"key": "a", "weight": 0}])
    assert sorted((p.path, p.code) for p in error.value.problems) == sorted([
        ("name", "required"), ("segment_id", "unknown_segment"), ("schedule.time", "invalid_time"),
        ("schedule.weekday", "invalid_range"), ("content.subject", "template_syntax"),
        ("content.body", "template_syntax"), ("holdout_percent", "invalid_range"), ("cap_days", "incomplete_cap"),
        ("variants[0].weight", "invalid_range")])
    with pytest.raises(DomainError) as naive:
        email_campaign(alpha_admin, segment, schedule={"kind": "once", "at": "2026-06-01T09:00:00"})
    assert naive.value.problems[0].code == "naive_datetime"
    with pytest.raises(DomainError) as in_app:
        email_campaign(alpha_admin, segment, channel="in_app", content={"title": ""})
    assert {(p.path, p.code) for p in in_app.value.problems} == {("content.title", "required"),
                                                                 ("content.body", "required")}
    assert not Campaign.objects.exists()


def test_permissions_are_checked_in_the_services_and_transitions_are_audited(alpha_admin, in_tenant):
    from tests.conftest import make_member, membership_of

    make_member(in_tenant, "viewer@alpha.test", "viewer")
    make_member(in_tenant, "analyst@alpha.test", "analyst")
    viewer, analyst = membership_of(in_tenant, "viewer@alpha.test"), membership_of(in_tenant, "analyst@alpha.test")
    segment = static_segment("p", people(1))
    with pytest.raises(DomainError) as error:
        email_campaign(viewer, segment)
    assert http_status(error.value) == 403
    campaign = email_campaign(alpha_admin, segment)
    with pytest.raises(DomainError):
        campaign_launch(actor=analyst, campaign=campaign, now=T0)
    campaign_launch(actor=alpha_admin, campaign=campaign, now=T0)
    campaign_pause(actor=alpha_admin, campaign=campaign, reason="Checking copy")
    with pytest.raises(DomainError) as locked:
        campaign_update(actor=alpha_admin, campaign=campaign, holdout_percent=20)
    assert locked.value.problems[0].code == "locked_after_launch"
    campaign_update(actor=alpha_admin, campaign=campaign, content={**EMAIL, "subject": "Hello again"})
    campaign_cancel(actor=alpha_admin, campaign=campaign, now=T0)
    actions = list(AuditEvent.objects.filter(target_id=str(campaign.pk), target_type="campaigns.campaign")
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["campaign.created", "campaign.launched", "campaign.paused", "campaign.updated",
                       "campaign.cancelled"]
    with pytest.raises(DomainError) as again:
        campaign_cancel(actor=alpha_admin, campaign=campaign, now=T0)
    assert (http_status(again.value), again.value.problems[0].code) == (409, "invalid_transition")


def test_a_paused_campaign_stops_sending_between_batches(alpha_admin):
    campaign = launched(alpha_admin, static_segment("big", people(6)))
    sleeps = []

    def pause_after_first_batch(seconds):
        sleeps.append(seconds)
        Campaign.objects.filter(pk=campaign.pk).update(status="paused")

    result = sending.run_occasion(campaign_id=campaign.pk, occasion="once", now=T0, clock=clock,
                                  sleep=pause_after_first_batch, batch=2, rate=1.0)
    assert result.status == "not_running" and len(mail.outbox) == 2
