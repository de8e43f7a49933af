"""Concurrent batches for overlapping customers queue on row locks instead of deadlocking."""

import threading
import uuid
from datetime import datetime, timezone

from django.db import connection
from django_tenants.utils import schema_context

from customers.ingest import Message, ingest_messages
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
