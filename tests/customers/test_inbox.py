"""Tracking requests acknowledged from the inbox, stored by the merge (customers/ingest/inbox.py)."""

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone as dj_timezone
from django_tenants.utils import schema_context

from apikeys.selectors import write_key_current
from customers.ingest import inbox
from customers.models import Customer, CustomerIdentity, Event, InboxBatch
from tests.conftest import host_of

NOW = datetime(2026, 12, 7, 6, tzinfo=timezone.utc)


def clock():
    return NOW


@pytest.fixture
def queued(settings):
    settings.TRACKING_MERGE = "queued"


def post(tenant, body):
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    return Client(HTTP_HOST=host_of(tenant)).post("/v1/batch", json.dumps({"writeKey": key, **body}).encode(),
                                                  content_type="application/json")


def test_a_queued_request_is_acknowledged_from_the_inbox_and_stored_by_the_merge(tenant, queued):
    answer = post(tenant, {"batch": [
        {"type": "identify", "userId": "ib-1", "traits": {"plan": "pro", "company_size": "many"}},
        {"type": "track", "userId": "ib-1", "event": "project_created", "messageId": "ib-m1",
         "properties": {"seats": 3}},
        {"type": "track", "event": "nobody"},
    ]})
    assert answer.status_code == 200
    body = answer.json()
    # Refusals that need the trait registry are answered before the items are merged.
    assert body["accepted"] == 1
    assert [(r["path"], r["code"]) for r in body["rejected"]] == [
        ("batch[0].traits.company_size", "type_mismatch"), ("batch[2].userId", "required")]
    with schema_context(tenant.schema_name):
        assert not Customer.objects.filter(external_id="ib-1").exists()
        assert list(InboxBatch.objects.values_list("items", flat=True)) == [1]
        assert inbox.waiting() == (1, 1)
        later = dj_timezone.now() + timedelta(hours=1)
        assert inbox.merge(clock=lambda: later) == (1, True)
        event = Event.objects.get(message_id="ib-m1")
        assert (event.customer.external_id, event.properties, event.source) == ("ib-1", {"seats": 3}, "tracking")
        assert event.received_at < later - timedelta(minutes=30)  # when the request came, not the merge
        assert inbox.waiting() == (0, 0)


def test_the_merge_stores_requests_in_the_order_they_came(tenant, queued):
    """Later traits win across requests, an alias in a later request merges an earlier
    anonymous profile, and a retried request is stored once."""
    first = {"batch": [{"type": "track", "anonymousId": "ib-anon", "event": "page_seen", "messageId": "ib-o1"},
                       {"type": "identify", "anonymousId": "ib-anon", "traits": {"plan": "free"}}]}
    second = {"batch": [{"type": "identify", "userId": "ib-2", "traits": {"plan": "pro"}},
                        {"type": "alias", "previousId": "ib-anon", "userId": "ib-2"}]}
    for body in (first, second, first):
        assert post(tenant, body).status_code == 200
    with schema_context(tenant.schema_name):
        assert inbox.merge(clock=clock) == (6, True)
        customer = Customer.objects.get(external_id="ib-2")
        assert customer.plan == "free"  # the retried first request came last: its identify wins
        assert list(customer.events.values_list("message_id", flat=True)) == ["ib-o1"]
        assert CustomerIdentity.objects.filter(value="ib-anon").get().customer_id == customer.pk


def test_a_batch_the_merge_cannot_store_is_set_aside_and_the_rest_stored(tenant):
    good = [{"y": "track", "t": NOW.isoformat(), "u": "ib-g", "e": "ok", "m": f"ib-g{i}"} for i in range(2)]
    bad = [{"y": "track", "t": NOW.isoformat(), "u": "ib-b", "e": "ok", "m": "ib-b", "p": {"text": "a\u0000b"}}]
    with schema_context(tenant.schema_name):
        for items in ([good[0]], bad, [good[1]]):
            InboxBatch.objects.create(received_at=NOW, items=len(items), messages=json.dumps(items))
        assert inbox.merge(clock=clock) == (2, True)
        assert set(Event.objects.filter(name="ok").values_list("message_id", flat=True)) == {"ib-g0", "ib-g1"}
        aside = InboxBatch.objects.get()
        assert (aside.failed_at, aside.items, json.loads(aside.messages)) == (NOW, 1, bad)
        assert "DataError" in aside.error or "character" in aside.error
        assert inbox.waiting() == (0, 0)
        assert inbox.merge(clock=clock) == (0, True)  # a set-aside batch is not tried again


def test_a_merge_stops_after_its_budget_and_takes_chunks_of_merge_items(tenant, monkeypatch):
    monkeypatch.setattr(inbox, "MERGE_ITEMS", 3)
    ticks = iter(NOW + timedelta(seconds=s) for s in range(100))
    with schema_context(tenant.schema_name):
        for i in range(4):
            items = [{"y": "track", "t": NOW.isoformat(), "u": f"ib-c{i}", "e": "chunked", "m": f"ib-c{i}-{j}"}
                     for j in range(2)]
            InboxBatch.objects.create(received_at=NOW, items=2, messages=json.dumps(items))
        # The first chunk takes two requests (4 items: a request is never split), then the
        # budget of 1.5 s has passed.
        assert inbox.merge(clock=lambda: next(ticks), budget=timedelta(seconds=1.5)) == (4, False)
        assert inbox.waiting() == (2, 4)
        assert inbox.merge(clock=clock) == (4, True)
        assert Event.objects.filter(name="chunked").count() == 8


def test_the_sweep_merges_only_when_no_merge_is_queued(tenant, queued, django_capture_on_commit_callbacks):
    from customers.tasks import merge_inbox

    with django_capture_on_commit_callbacks(execute=True):
        post(tenant, {"batch": [{"type": "track", "userId": "ib-s", "event": "swept", "messageId": "ib-s1"}]})
    with schema_context(tenant.schema_name):
        assert inbox.merge_queued()  # the request queued a merge (its message waits for a worker)
        assert merge_inbox.run(sweep=True) == 0
        inbox.merge_started()  # as a merge that died after clearing the flag
        assert merge_inbox.run(sweep=True) == 1
        assert Event.objects.filter(message_id="ib-s1").exists()


def test_a_worker_merges_what_requests_accept(alpha_committed, celery_worker, settings):
    """The real path: requests answered from the inbox, the queued task on a real worker
    stores them; a later request queues the next merge."""
    settings.TRACKING_MERGE = "queued"
    tenant, tag = alpha_committed
    for n in range(3):
        batch = [{"type": "track", "userId": f"{tag}-w{n}", "event": "worked", "messageId": f"{tag}-w{n}-{i}"}
                 for i in range(5)]
        assert post(tenant, {"batch": batch}).json()["accepted"] == 5
        deadline = time.monotonic() + 20
        with schema_context(tenant.schema_name):
            while Event.objects.filter(message_id__startswith=f"{tag}-w{n}-").count() < 5:
                assert time.monotonic() < deadline, "the merge never ran"
                time.sleep(0.1)
            assert inbox.waiting() == (0, 0)
    connection.set_schema_to_public()


def test_the_inbox_row_holds_the_messages_as_sent(tenant, queued):
    big = 2**70
    marker = uuid.uuid4().hex
    post(tenant, {"batch": [{"type": "track", "userId": marker, "event": "big", "messageId": marker,
                             "properties": {"n": big, "when": "2026-01-01"}, "timestamp": "2026-12-01T10:00:00Z"}]})
    with schema_context(tenant.schema_name):
        inbox.merge(clock=clock)
        event = Event.objects.get(message_id=marker)
        assert event.properties == {"n": big, "when": "2026-01-01"}
        assert event.timestamp == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def test_a_request_whose_merge_cannot_be_queued_is_still_acknowledged(tenant, queued, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    """Its items are stored in the inbox already: a 500 would make the SDK send them again.
    The flag is dropped so the next request queues the merge."""
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(inbox, "send_to_tenant", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        answer = post(tenant, {"batch": [{"type": "track", "userId": "ib-q", "event": "e", "messageId": "ib-q1"}]})
    assert (answer.status_code, answer.json()["accepted"]) == (200, 1)
    with schema_context(tenant.schema_name):
        assert inbox.waiting() == (1, 1)
        assert not inbox.merge_queued()


def test_a_merge_waits_only_when_requests_pile_up(tenant, queued, monkeypatch, settings):
    settings.TRACKING_MERGE_DELAY = 0.25
    sent = []
    monkeypatch.setattr(inbox, "send_to_tenant", lambda *args, countdown=None, **kwargs: sent.append(countdown))
    with schema_context(tenant.schema_name):
        inbox._flag()[0].delete(inbox._busy_key())  # another test's merges may have left it
        inbox.merge_started()
        inbox.queue_merge()
        inbox.queue_merge()  # one is queued: no second
        assert sent == [None]  # quiet: at once
        for i in range(2):  # two requests waiting for one merge: the tenant is busy
            InboxBatch.objects.create(received_at=NOW, items=1, messages=json.dumps(
                [{"y": "track", "t": NOW.isoformat(), "u": f"ib-p{i}", "e": "piled"}]))
        inbox.merge_started()
        assert inbox.merge(clock=clock) == (2, True)
        inbox.queue_merge()
        assert sent == [None, 0.25]
        inbox.merge_started()


def test_past_the_backlog_limit_requests_are_refused_until_the_merge_catches_up(tenant, queued, settings,
                                                                                 monkeypatch):
    from django.core.cache import cache

    settings.TRACKING_INBOX_LIMIT = 3
    monkeypatch.setattr(inbox, "MERGE_ITEMS", 2)
    with schema_context(tenant.schema_name):
        for i in range(6):
            InboxBatch.objects.create(received_at=NOW, items=1, messages=json.dumps(
                [{"y": "track", "t": NOW.isoformat(), "u": f"ib-l{i}", "e": "backlogged"}]))
        # What the merge counts as it goes: 4 left after its first chunk, then 2, then none.
        counted = []
        monkeypatch.setattr(inbox, "_merge_chunk", lambda rows, clock: counted.append(cache.get(inbox.BACKLOG_KEY))
                            or len(rows))
        assert inbox.merge(clock=clock) == (6, True)
        assert counted == [4, 2, 0] and cache.get(inbox.BACKLOG_KEY) is None
        cache.set(inbox.BACKLOG_KEY, 4, 30)
    refused = post(tenant, {"batch": [{"type": "track", "userId": "ib-l", "event": "e", "messageId": "ib-l"}]})
    assert refused.status_code == 503 and refused["Retry-After"] == "2"
    assert refused.json()["errors"][0]["code"] == "ingest_backlog"
    with schema_context(tenant.schema_name):
        assert inbox.waiting() == (0, 0)
        cache.set(inbox.BACKLOG_KEY, 3, 30)
    assert post(tenant, {"batch": [{"type": "track", "userId": "ib-l", "event": "e"}]}).status_code == 200
    with schema_context(tenant.schema_name):
        cache.delete(inbox.BACKLOG_KEY)


def test_inbox_rows_are_stored_uncompressed(tenant):
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'customers_inboxbatch'::regclass "
                       "AND attname = 'messages'")
        assert cursor.fetchone() == ("e",)


def test_set_aside_batches_are_listed_and_retried_by_command(tenant):
    from io import StringIO

    from django.core.management import call_command

    bad = [{"y": "track", "t": NOW.isoformat(), "u": "ib-r", "e": "retried", "m": "ib-r1", "p": {"x": "a\u0000"}}]
    with schema_context(tenant.schema_name):
        InboxBatch.objects.create(received_at=NOW, items=1, messages=json.dumps(bad))
        assert inbox.merge(clock=clock) == (0, True)
    connection.set_schema_to_public()
    listed = StringIO()
    call_command("inbox_retry", tenant=tenant.slug, stdout=listed)
    assert "1 items" in listed.getvalue() and "1 batch(es) set aside" in listed.getvalue()
    with schema_context(tenant.schema_name):  # the fault is fixed (here: the data itself)
        InboxBatch.objects.update(messages=json.dumps([{**bad[0], "p": {"x": "a"}}]))
    retried = StringIO()
    call_command("inbox_retry", tenant=tenant.slug, retry=True, stdout=retried)
    assert "1 batch(es) put back, 1 items merged, 0 set aside again" in retried.getvalue()
    with schema_context(tenant.schema_name):
        assert Event.objects.filter(message_id="ib-r1").exists() and not InboxBatch.objects.exists()
    with pytest.raises(Exception, match="no workspace"):
        call_command("inbox_retry", tenant="nobody")


def test_a_tenants_inbox_and_its_merge_flags_are_its_own(tenant, other_tenant, queued,
                                                         django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(inbox, "send_to_tenant", lambda *args, **kwargs: None)
    with django_capture_on_commit_callbacks(execute=True):
        post(tenant, {"batch": [{"type": "track", "userId": "ib-i", "event": "isolated", "messageId": "ib-i1"}]})
    with schema_context(other_tenant.schema_name):
        assert inbox.waiting() == (0, 0) and not inbox.merge_queued()
        assert inbox.merge(clock=clock) == (0, True)
    with schema_context(tenant.schema_name):
        assert inbox.waiting() == (1, 1) and inbox.merge_queued()
        assert inbox.merge(clock=clock) == (1, True)
        assert Event.objects.filter(message_id="ib-i1").exists()
        inbox.merge_started()
    with schema_context(other_tenant.schema_name):
        assert not Event.objects.filter(message_id="ib-i1").exists()
