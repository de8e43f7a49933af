"""The audit log is append-only and records who, what, from where."""

import pytest
from django.db import DatabaseError, transaction

from audit.context import RequestMeta, request_meta
from audit.models import AuditEvent
from audit.services import audit_record


def test_an_event_carries_actor_target_ip_and_user_agent(alpha_admin):
    token = request_meta.set(RequestMeta(ip="203.0.113.9", user_agent="pytest-agent"))
    try:
        event = audit_record(actor=alpha_admin, action="settings.changed", target=alpha_admin.role,
                             changes={"x": [1, 2]})
    finally:
        request_meta.reset(token)
    event.refresh_from_db()
    assert (event.actor_kind, event.actor_label, event.ip, event.user_agent) == (
        "user", "admin@alpha.test", "203.0.113.9", "pytest-agent")
    assert event.target_type == "tenants.role" and event.target_id == str(alpha_admin.role.pk)
    assert event.at is not None


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_the_database_refuses_to_change_or_delete_history(alpha_admin, operation):
    event = audit_record(actor=None, action="x.happened")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        if operation == "update":
            AuditEvent.objects.filter(pk=event.pk).update(action="x.rewritten")
        else:
            AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "x.happened"


def test_audit_needs_a_tenant_schema(db):
    with pytest.raises(RuntimeError):
        audit_record(actor=None, action="nowhere")
