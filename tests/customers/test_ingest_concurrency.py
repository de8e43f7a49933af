"""Concurrent batches for overlapping customers queue on row locks instead of deadlocking."""

import threading
import uuid
from datetime import datetime, timezone

from django.db import connection
from django_tenants.utils import schema_context

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, Event
from tenants.models import Tenant

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def test_two_writers_in_opposite_orders_both_succeed(committed_db):
    alpha = Tenant.objects.get(slug="alpha")
    prefix = f"cc-{uuid.uuid4().hex[:6]}"
    users = [f"{prefix}-{n:03d}" for n in range(60)]
    errors: list[BaseException] = []

    def writer(order: list[str], tag: str) -> None:
        try:
            with schema_context(alpha.schema_name):
                for round_ in range(8):
                    batch = [Message(type="track", timestamp=NOW, user_id=u, event="login",
                                     message_id=f"{prefix}-{tag}-{round_}-{u}", index=i)
                             for i, u in enumerate(order)]
                    batch += [Message(type="identify", timestamp=NOW, user_id=u, traits={"plan": tag}, index=len(order) + i)
                              for i, u in enumerate(order)]
                    ingest_messages(messages=batch, source="test", now=NOW)
        except BaseException as error:  # reported below; a thread must not swallow it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(users, "a")), threading.Thread(target=writer, args=(users[::-1], "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        with schema_context(alpha.schema_name):
            assert Customer.objects.filter(external_id__startswith=prefix).count() == 60
            assert Event.objects.filter(message_id__startswith=prefix).count() == 2 * 8 * 60
    finally:
        with schema_context(alpha.schema_name):
            Customer.objects.filter(external_id__startswith=prefix).delete()


def test_track_only_writers_in_opposite_orders_lock_in_the_store_statement(committed_db):
    """Track batches lock their customers only in the statement that stores the events;
    two writers over the same customers in opposite orders still both succeed, and each
    customer ends with the latest timestamp either sent."""
    from datetime import timedelta

    alpha = Tenant.objects.get(slug="alpha")
    prefix = f"ct-{uuid.uuid4().hex[:6]}"
    users = [f"{prefix}-{n:03d}" for n in range(60)]
    with schema_context(alpha.schema_name):  # known customers: the steady state of tracking
        ingest_messages(messages=[Message(type="identify", timestamp=NOW, user_id=u, index=i)
                                  for i, u in enumerate(users)], source="test", now=NOW)
    errors: list[BaseException] = []

    def writer(order: list[str], tag: str, offset: int) -> None:
        try:
            with schema_context(alpha.schema_name):
                for round_ in range(10):
                    stamp = NOW + timedelta(minutes=2 * round_ + offset)
                    ingest_messages(messages=[Message(type="track", timestamp=stamp, user_id=u, event="view",
                                                      message_id=f"{prefix}-{tag}-{round_}-{u}", index=i)
                                              for i, u in enumerate(order)], source="test", now=stamp)
        except BaseException as error:  # reported below; a thread must not swallow it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(users, "a", 0)),
               threading.Thread(target=writer, args=(users[::-1], "b", 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        with schema_context(alpha.schema_name):
            assert Event.objects.filter(message_id__startswith=prefix).count() == 2 * 10 * 60
            latest = NOW + timedelta(minutes=2 * 9 + 1)
            assert set(Customer.objects.filter(external_id__startswith=prefix)
                       .values_list("last_seen_at", flat=True)) == {latest}
    finally:
        with schema_context(alpha.schema_name):
            Customer.objects.filter(external_id__startswith=prefix).delete()
