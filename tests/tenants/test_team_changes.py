"""tenants hands each change to a team to the handlers settings name (the audit log), inside
the service's transaction, without importing the tenant-data room that keeps the log."""

import pytest
from django.db import transaction

from audit.models import AuditEvent
from tenants.models import Role
from tenants.services import role_create
from tenants.services.team_changes import TeamChange, changes_between

HEARD: list[TeamChange] = []


def hear(change: TeamChange) -> None:
    HEARD.append(change)


def refuse(change: TeamChange) -> None:
    raise RuntimeError(f"refused {change.action}")


@pytest.fixture
def heard():
    HEARD.clear()
    yield HEARD
    HEARD.clear()


def test_changes_between_lists_only_what_changed():
    assert changes_between({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}


def test_a_team_change_becomes_an_audit_line(alpha_admin):
    role = role_create(actor=alpha_admin, name="Auditor", permissions=["audit.view"])
    event = AuditEvent.objects.get(action="role.created", target_id=str(role.pk))
    assert (event.actor_label, event.target_type, event.changes) == (
        "admin@alpha.test", "tenants.role", {"permissions": [None, ["audit.view"]]})


def test_the_handlers_are_the_ones_settings_name(alpha_admin, heard, settings):
    settings.TEAM_CHANGE_HANDLERS = [f"{__name__}.hear"]
    role = role_create(actor=alpha_admin, name="Auditor", permissions=["audit.view"])
    assert [(change.actor, change.action, change.target, dict(change.changes)) for change in heard] == [
        (alpha_admin, "role.created", role, {"permissions": [None, ["audit.view"]]})]
    assert not AuditEvent.objects.filter(action="role.created", target_id=str(role.pk)).exists()


def test_a_handler_that_fails_undoes_the_change(alpha_admin, settings):
    settings.TEAM_CHANGE_HANDLERS = [f"{__name__}.hear", f"{__name__}.refuse"]
    with pytest.raises(RuntimeError, match="refused role.created"):
        role_create(actor=alpha_admin, name="Auditor", permissions=["audit.view"])
    assert not Role.objects.filter(tenant=alpha_admin.tenant, name="Auditor").exists()


def test_a_change_that_rolls_back_leaves_no_line(alpha_admin):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        role_create(actor=alpha_admin, name="Auditor", permissions=["audit.view"])
        raise RuntimeError("the caller changes its mind")
    assert AuditEvent.objects.count() == before
    assert not Role.objects.filter(tenant=alpha_admin.tenant, name="Auditor").exists()
