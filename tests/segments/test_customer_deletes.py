"""No membership outlives its customer: what the membership → customer foreign key guaranteed,
kept by the trigger of segments/0005 and the engine's advisory lock (real PostgreSQL,
two connections where a delete races an evaluation)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from django.db import connection, transaction
from django_tenants.utils import schema_context

from customers.models import Customer
from segments import engine
from segments.models import DeletedCustomer, Membership, Segment
from tests.threads import in_thread, wait_for

T0 = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
PRO = {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}


def evaluate(segment: Segment, now: datetime = T0):
    return engine.evaluate(segment_id=segment.pk, now=now, trigger="manual", clock=lambda: now)


def test_deleting_a_customer_removes_its_stays_whoever_deletes(in_tenant):
    segment = Segment.objects.create(key="pro", name="Pro", definition=PRO, definition_version=1)
    ada, bob, cy = (Customer.objects.create(external_id=x, plan="pro") for x in ("ada", "bob", "cy"))
    evaluate(segment)
    Customer.objects.filter(pk=ada.pk).update(plan="free")
    evaluate(segment, T0.replace(hour=13))  # ada's membership is closed: history too must go with her
    assert Membership.objects.filter(customer_id=ada.pk).count() == 1

    ada_id = ada.pk
    ada.delete()  # the ORM: Django no longer cascades (DO_NOTHING), the database does
    with connection.cursor() as cursor:  # plain SQL, as an identity merge deletes its losers
        cursor.execute("DELETE FROM customers_customer WHERE id = %s", [bob.pk])

    assert set(Membership.objects.values_list("customer_id", flat=True)) == {cy.pk}
    assert set(DeletedCustomer.objects.values_list("customer_id", flat=True)) == {ada_id, bob.pk}


def test_deleted_ids_are_kept_for_a_day(in_tenant):
    from datetime import timedelta

    from django.utils import timezone

    DeletedCustomer.objects.create(customer_id=10**9, deleted_at=timezone.now() - timedelta(days=1, minutes=1))
    DeletedCustomer.objects.create(customer_id=10**9 + 1, deleted_at=timezone.now() - timedelta(hours=23))
    gone = Customer.objects.create(external_id="gone")
    Customer.objects.filter(pk=gone.pk).delete()
    assert set(DeletedCustomer.objects.values_list("customer_id", flat=True)) == {10**9 + 1, gone.pk}


def test_the_trigger_removes_stays_of_its_own_schema_only(in_tenant, other_tenant):
    """The trigger names the table's schema, not the session's search_path."""
    with schema_context(other_tenant.schema_name):
        theirs = Customer.objects.create(external_id="same-id", plan="pro")
        their_segment = Segment.objects.create(key="pro", name="Pro", definition=PRO, definition_version=1)
        evaluate(their_segment)
    ours = Customer.objects.create(external_id="same-id", plan="pro")
    with connection.cursor() as cursor:
        # Our schema's customers table, from a session whose search_path starts elsewhere.
        cursor.execute(f"SET LOCAL search_path TO {other_tenant.schema_name}, public")
        cursor.execute(f"DELETE FROM {connection.schema_name}.customers_customer WHERE id = %s", [ours.pk])
        cursor.execute(f"SET LOCAL search_path TO {connection.schema_name}, public")
    with schema_context(other_tenant.schema_name):
        assert list(Membership.objects.values_list("customer_id", flat=True)) == [theirs.pk]


def _waiting_on_advisory_lock(schema: str) -> bool:
    with schema_context(schema), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


def test_a_delete_during_an_evaluation_waits_for_it_and_leaves_no_stay(alpha_committed):
    """The evaluation has read the customer and written its membership, uncommitted, when the
    delete comes: the delete waits, then removes the membership the evaluation committed."""
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        segment = Segment.objects.create(key=f"{tag}-pro", name="Pro", definition=PRO, definition_version=1)
        ada = Customer.objects.create(external_id=f"{tag}-ada", plan="pro")
    written, release = threading.Event(), threading.Event()

    def evaluation() -> None:
        with schema_context(tenant.schema_name), transaction.atomic():
            assert evaluate(segment).entered == 1
            written.set()
            release.wait(20)  # commit only once the delete is waiting

    def delete() -> None:
        with schema_context(tenant.schema_name):
            Customer.objects.filter(pk=ada.pk).delete()

    evaluating, evaluation_errors = in_thread(evaluation)
    assert written.wait(20)
    deleting, delete_errors = in_thread(delete)
    try:
        assert wait_for(lambda: _waiting_on_advisory_lock(tenant.schema_name))
        assert deleting.is_alive()  # held back by the evaluation
    finally:
        release.set()
        evaluating.join(20)
        deleting.join(20)
    assert evaluation_errors == delete_errors == []
    with schema_context(tenant.schema_name):
        assert not Customer.objects.filter(pk=ada.pk).exists()
        assert not Membership.objects.filter(customer_id=ada.pk).exists()


def test_an_evaluation_during_a_delete_waits_for_it_and_skips_the_customer(alpha_committed):
    """The delete is done but not committed when the evaluation comes to write: it waits,
    then finds the customer gone and opens no membership for them."""
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        segment = Segment.objects.create(key=f"{tag}-pro", name="Pro", definition=PRO, definition_version=1)
        ada = Customer.objects.create(external_id=f"{tag}-ada", plan="pro")
        bob = Customer.objects.create(external_id=f"{tag}-bob", plan="pro")
    deleted, release = threading.Event(), threading.Event()
    results = []

    def delete() -> None:
        with schema_context(tenant.schema_name), transaction.atomic():
            Customer.objects.filter(pk=ada.pk).delete()
            deleted.set()
            release.wait(20)

    def evaluation() -> None:
        with schema_context(tenant.schema_name):
            results.append(evaluate(segment))

    deleting, delete_errors = in_thread(delete)
    assert deleted.wait(20)
    evaluating, evaluation_errors = in_thread(evaluation)
    try:
        assert wait_for(lambda: _waiting_on_advisory_lock(tenant.schema_name))
        assert evaluating.is_alive()
    finally:
        release.set()
        deleting.join(20)
        evaluating.join(20)
    assert evaluation_errors == delete_errors == []
    [result] = results
    assert (result.status, result.entered, result.size) == ("succeeded", 1, 1)
    with schema_context(tenant.schema_name):
        assert list(Membership.objects.filter(segment=segment).values_list("customer_id", flat=True)) == [bob.pk]
