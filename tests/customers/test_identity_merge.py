"""An identity merge of a profile that other apps hold rows for: its segment stays, survey
answers, consents, metrics, campaign arms and sends become the survivor's, and the batch
succeeds (it used to fail at commit on the membership → customer foreign key)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from campaigns.models import Assignment, Campaign, Send
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Consent, ConsentChange, Customer, CustomerMetrics, Survey, SurveyResponse
from customers.touch import Touch
from segments import engine
from segments.models import Membership, MembershipChange, Segment

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
T = NOW - timedelta(hours=1)
EVERYONE = {"version": 1, "match": "all", "conditions": [{"type": "event", "event": "page_viewed",
                                                          "count": {"op": "gte", "value": 1}}]}


def msg(type_="track", i=0, **kw) -> Message:
    return Message(type=type_, timestamp=kw.pop("timestamp", T), index=i, path=f"batch[{i}]", **kw)


def ingest(*messages: Message, now: datetime = NOW):
    return ingest_messages(messages=list(messages), source="test", now=now)


def two_profiles() -> tuple[Customer, Customer]:
    ingest(msg("identify", user_id="u1", traits={"email": "one@example.test"}), msg("page", i=1, user_id="u1"))
    ingest(msg("page", anonymous_id="a1"))
    return Customer.objects.get(external_id="u1"), Customer.objects.get(external_id="anon:a1")


def merge() -> None:
    result = ingest(msg("alias", user_id="u1", previous_id="a1"))
    assert result.customers_merged == 1 and not result.problems


def test_stays_move_to_the_survivor_one_open_stay_per_segment(in_tenant):
    known, anonymous = two_profiles()
    viewers = Segment.objects.create(key="viewers", name="Viewers", definition=EVERYONE, definition_version=1)
    engine.evaluate(segment_id=viewers.pk, now=NOW - timedelta(minutes=30), trigger="manual", clock=lambda: NOW)
    vip = Segment.objects.create(key="vip", name="VIP", kind="static")
    engine.members_add(segment=vip, customer_ids=[anonymous.pk], now=T)
    old = Segment.objects.create(key="old", name="Old", kind="static")  # a closed stay: history
    engine.members_add(segment=old, customer_ids=[anonymous.pk], now=T - timedelta(hours=2))
    engine.members_remove(segment=old, customer_ids=[anonymous.pk], now=T - timedelta(hours=1))

    merge()

    assert not Customer.objects.filter(pk=anonymous.pk).exists()
    assert not Membership.objects.filter(customer_id=anonymous.pk).exists()
    open_stays = Membership.objects.filter(customer=known, exited_at__isnull=True)
    assert sorted(open_stays.values_list("segment__key", flat=True)) == ["viewers", "vip"]  # one each
    assert Membership.objects.filter(customer=known, segment=old, exited_at__isnull=False).count() == 1
    assert Membership.objects.filter(customer=known, segment=viewers, exited_at__isnull=False).count() == 1
    changes = set(MembershipChange.objects.filter(at=NOW).values_list("segment__key", "customer_id", "change"))
    assert changes == {("viewers", anonymous.pk, "exited"), ("vip", anonymous.pk, "exited"),
                       ("vip", known.pk, "entered")}
    viewers.refresh_from_db()
    vip.refresh_from_db()
    assert (viewers.size, vip.size) == (1, 1)


def test_answers_consent_and_campaign_rows_move_and_metrics_are_dropped(in_tenant):
    known, anonymous = two_profiles()
    survey = Survey.objects.get(key="nps")  # every tenant has it
    SurveyResponse.objects.create(customer=anonymous, survey=survey, score=Decimal(9), responded_at=T)
    Consent.objects.create(customer=known, channel="email", granted=True, changed_at=T - timedelta(days=1))
    Consent.objects.create(customer=anonymous, channel="email", granted=False, changed_at=T)  # later: stands
    Consent.objects.create(customer=anonymous, channel="sms", granted=True, changed_at=T)
    ConsentChange.objects.create(customer=anonymous, channel="email", granted=False, changed_at=T)
    CustomerMetrics.objects.create(customer=anonymous, computed_at=T)
    campaign = Campaign.objects.create(name="Welcome", channel="email")
    other = Campaign.objects.create(name="Upsell", channel="email")
    Assignment.objects.create(campaign=campaign, customer=known, group="treatment", assigned_at=T)
    Assignment.objects.create(campaign=campaign, customer=anonymous, group="holdout", assigned_at=T)
    Assignment.objects.create(campaign=other, customer=anonymous, group="treatment", assigned_at=T)
    for customer in (known, anonymous):
        Send.objects.create(campaign=campaign, customer=customer, occasion="once", channel="email", status="sent",
                            claimed_at=T)

    merge()

    assert SurveyResponse.objects.get().customer_id == known.pk
    assert sorted(Consent.objects.filter(customer=known).values_list("channel", "granted")) == [
        ("email", False), ("sms", True)]
    assert ConsentChange.objects.get().customer_id == known.pk
    assert not CustomerMetrics.objects.exists()
    assert sorted(Assignment.objects.values_list("campaign__name", "customer_id", "group")) == [
        ("Upsell", known.pk, "treatment"), ("Welcome", known.pk, "treatment")]
    assert sorted(Send.objects.values_list("customer_id", "occasion")) == [
        (known.pk, "once"), (known.pk, f"once (merged {anonymous.pk})")]


def test_dynamic_segments_re_check_the_survivor_after_the_merge(in_tenant):
    """The moved stay is the survivor's now, and the batch's check (incremental, as for
    any new data) keeps or closes it by the rule."""
    known, anonymous = two_profiles()
    anonymous_only = {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "email", "op": "is_not_set"}]}
    segment = Segment.objects.create(key="anon", name="Anonymous", definition=anonymous_only, definition_version=1)
    engine.evaluate(segment_id=segment.pk, now=T, trigger="manual", clock=lambda: NOW)
    assert list(Membership.objects.filter(segment=segment).values_list("customer_id", flat=True)) == [anonymous.pk]
    merge()
    check = engine.evaluate(segment_id=segment.pk, now=NOW, trigger="ingest", clock=lambda: NOW,
                            customer_ids=[known.pk])
    assert (check.entered, check.exited, check.size) == (0, 1, 0)
    assert not Membership.objects.filter(segment=segment, exited_at__isnull=True).exists()


def test_a_merge_waits_for_an_evaluation_writing_the_same_segment(alpha_committed):
    """The evaluation is opening the survivor's stay (uncommitted) when the merge comes to
    move the loser's: the merge waits for the segment, then closes the loser's stay instead
    of opening a second one for the survivor (which would fail the batch)."""
    import threading
    import time

    from django.db import transaction
    from django_tenants.utils import schema_context

    from tests.threads import in_thread

    alpha, tag = alpha_committed
    user, anon = f"{tag}-u", f"{tag}-a"
    with schema_context(alpha.schema_name):
        ingest(msg("identify", user_id=user, traits={"plan": "free", "cohort": tag}))
        ingest(msg("identify", anonymous_id=anon, traits={"plan": "pro", "cohort": tag}))
        known = Customer.objects.get(external_id=user)
        anonymous = Customer.objects.get(external_id=f"anon:{anon}")
        pro = {"version": 1, "match": "all", "conditions": [
            {"type": "trait", "field": "plan", "op": "eq", "value": "pro"},
            {"type": "trait", "field": "traits.cohort", "op": "eq", "value": tag}]}
        segment = Segment.objects.create(key=tag, name="Pro", definition=pro, definition_version=1)
        first = engine.evaluate(segment_id=segment.pk, now=T, trigger="manual", clock=lambda: NOW)
        assert (first.status, first.entered) == ("succeeded", 1), first.error  # the loser is in
        Customer.objects.filter(pk=known.pk).update(plan="pro")
    written, release = threading.Event(), threading.Event()

    def evaluation() -> None:
        with schema_context(alpha.schema_name), transaction.atomic():
            assert engine.evaluate(segment_id=segment.pk, now=NOW, trigger="manual", clock=lambda: NOW).entered == 1
            written.set()
            release.wait(20)

    def merging() -> None:
        with schema_context(alpha.schema_name):
            result = ingest(msg("alias", user_id=user, previous_id=anon), now=NOW + timedelta(minutes=1))
            assert result.customers_merged == 1 and not result.problems

    evaluating, evaluation_errors = in_thread(evaluation)
    try:
        assert written.wait(20)
        merger, merge_errors = in_thread(merging)
        time.sleep(1)
        assert merger.is_alive()  # waiting for the segment the evaluation holds
    finally:
        release.set()
        evaluating.join(20)
    merger.join(30)
    errors = evaluation_errors + merge_errors
    try:
        assert errors == []
        with schema_context(alpha.schema_name):
            stays = Membership.objects.filter(segment=segment)
            assert list(stays.filter(exited_at__isnull=True).values_list("customer_id", flat=True)) == [known.pk]
            assert stays.filter(customer=known, exited_at__isnull=False).count() == 1  # the loser's, moved and closed
            segment.refresh_from_db()
            assert segment.size == 1
    finally:
        with schema_context(alpha.schema_name):  # not the fixture's: "anon:" leads its external id
            Customer.objects.filter(pk=anonymous.pk).delete()


def test_a_merge_announces_its_survivor_and_every_segment_re_checks_it(in_tenant, touched,
                                                                      django_capture_on_commit_callbacks):
    """An alias brings no event and no trait, yet the survivor's facts are now both
    profiles': it is announced as merged, and a segment on a trait re-checks it."""
    from segments import scheduling

    known, anonymous = two_profiles()
    anonymous_only = {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "email", "op": "is_not_set"}]}
    segment = Segment.objects.create(key="anon", name="Anonymous", definition=anonymous_only, definition_version=1)
    engine.evaluate(segment_id=segment.pk, now=T, trigger="manual", clock=lambda: NOW)
    with django_capture_on_commit_callbacks(execute=True):
        merge()

    [payload] = touched
    assert payload["merged"] == [known.pk] and payload["customer_ids"] == [known.pk]
    assert payload["events"] == {} and payload["traits"] == {}
    touch = Touch.from_payload(payload)
    assert scheduling.customers_to_check(scheduling.sensitivity(segment), touch) == {known.pk}
    assert scheduling.evaluate_touched(touch=touch, now=NOW, clock=lambda: NOW) == 1
    assert not Membership.objects.filter(segment=segment, exited_at__isnull=True).exists()
