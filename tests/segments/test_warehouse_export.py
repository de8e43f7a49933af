"""Warehouse export to Parquet: what a round trip gives back, increments of events, resuming
an interrupted export without duplicate files, and every refusal coded.

The export reads on its own connection (one snapshot for all tables), so the data here is
committed (alpha_committed) and carries the test's tag; only tagged rows are compared."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone as django_timezone
from django_tenants.utils import schema_context

from common.errors import Conflict, DomainError, Forbidden
from customers.models import Customer, Event, TraitDefinition
from ops.models import TaskRun
from segments.services import segment_create, static_members_add, static_members_remove
from segments.warehouse import services as warehouse
from segments.warehouse.models import WarehouseExport
from tenants.models import User
from tests.conftest import make_member, membership_of

DAY1 = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 3, 23, 59, tzinfo=timezone.utc)


@pytest.fixture
def shop(alpha_committed):
    """Three tagged customers with built-in, personal and custom traits of every type, five
    events over two days, and a static segment one customer left."""
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        for key, type_ in (("score", "number"), ("vip", "boolean"), ("renewal_at", "datetime"), ("stack", "list"),
                           ("motto", "string")):
            TraitDefinition.objects.get_or_create(key=key, defaults={"type": type_, "category": "psychographic"})
        admin = membership_of(tenant, "admin@alpha.test")
        ada = Customer.objects.create(external_id=f"{tag}-ada", plan="pro", email="ada@example.test", country="DE",
                                      traits={"score": 4.5, "vip": True, "renewal_at": "2027-01-31T00:00:00+00:00",
                                              "stack": ["py", "sql"], "motto": "t_alpha. ship it"})
        bob = Customer.objects.create(external_id=f"{tag}-bob", plan="free", traits={"score": "oops"})
        cy = Customer.objects.create(external_id=f"{tag}-cy")
        for i, (who, name, at) in enumerate([(ada, "opened", DAY1), (ada, "bought", DAY1 + timedelta(hours=1)),
                                             (bob, "opened", DAY2), (cy, "opened", DAY2),
                                             (ada, "opened", DAY2 + timedelta(minutes=0))]):
            Event.objects.create(customer=who, name=name, timestamp=at, message_id=f"{tag}-e{i}",
                                 properties={"n": i, "nested": {"ok": True}})
        segment, _ = segment_create(actor=admin, key=f"{tag}-vips", name="VIPs", kind="static", now=DAY1)
        static_members_add(actor=admin, segment=segment, customer_ids=[ada.pk, bob.pk], now=DAY1)
        static_members_remove(actor=admin, segment=segment, customer_ids=[bob.pk], now=DAY2)
    yield tenant, tag, {"admin": admin, "ada": ada, "bob": bob, "cy": cy, "segment": segment}
    with schema_context(tenant.schema_name):
        WarehouseExport.objects.all().delete()
        TaskRun.objects.filter(kind=TaskRun.Kind.WAREHOUSE_EXPORT).delete()
        warehouse.WarehouseSchedule.objects.all().delete()


def later() -> datetime:
    """An export's `now` after everything committed so far has settled."""
    return django_timezone.now() + warehouse.EVENTS_SETTLE + timedelta(seconds=1)


def run(actor, **options) -> WarehouseExport:
    export = warehouse.export_create(actor=actor, tables=options.pop("tables", list(warehouse.warehouse_tables.TABLES)),
                                     now=options.pop("now", None) or later(), **options)
    return warehouse.export_run(export_id=export.pk, clock=django_timezone.now)


def read(export: WarehouseExport, table: str, tag: str, key: str = "external_id") -> list[dict]:
    storage = warehouse.warehouse_storage()
    rows = []
    for file in export.files.filter(table=table):
        with storage.open(file.path, "rb") as stream:
            rows += pq.read_table(stream).to_pylist()
    return sorted((r for r in rows if str(r.get(key) or "").startswith(tag)), key=lambda r: json.dumps(r, default=str))


def manifest(export: WarehouseExport) -> dict:
    with warehouse.warehouse_storage().open(export.manifest, "rb") as stream:
        return json.load(stream)


def test_an_export_round_trips_every_table(shop):
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        export = run(world["admin"])
        assert export.status == WarehouseExport.Status.SUCCEEDED, export.error
        customers = {r["external_id"]: r for r in read(export, "customers", tag)}
        assert customers[f"{tag}-ada"] | {} == customers[f"{tag}-ada"] and customers[f"{tag}-ada"]["plan"] == "pro"
        ada = customers[f"{tag}-ada"]
        assert (ada["score"], ada["vip"], ada["stack"], ada["motto"], ada["country"]) == (
            4.5, True, ["py", "sql"], "t_alpha. ship it", "DE")
        assert ada["renewal_at"] == datetime(2027, 1, 31, tzinfo=timezone.utc)
        assert "email" not in ada and "name" not in ada  # personal traits stay home unless asked for
        assert customers[f"{tag}-bob"]["score"] is None  # a stored value of the wrong type is null, not a failure
        assert ada["customer_id"] == world["ada"].pk

        events = read(export, "events", tag)
        assert sorted((e["message_id"], e["name"], e["timestamp"]) for e in events) == sorted(
            (e.message_id, e.name, e.timestamp) for e in Event.objects.filter(message_id__startswith=tag))
        assert json.loads(events[0]["properties"])["nested"] == {"ok": True}
        partitions = {f.partition for f in export.files.filter(table="events")}
        assert {"date=2026-11-02", "date=2026-11-03"} <= partitions

        memberships = read(export, "memberships", tag)
        by_customer = {m["customer_id"]: m for m in memberships}
        assert by_customer[world["bob"].pk]["exited_at"] == DAY2 and by_customer[world["ada"].pk]["exited_at"] is None
        assert {m["segment_key"] for m in memberships} == {f"{tag}-vips"}

        segments = read(export, "segments", tag, key="key")
        assert [(s["key"], s["kind"], s["name"]) for s in segments] == [(f"{tag}-vips", "static", "VIPs")]

        described = manifest(export)
        assert described["format"] == "strata-warehouse-export" and described["workspace"] == tenant.schema_name
        listed = [f["path"] for t in described["tables"].values() for f in t["files"]]
        assert len(listed) == len(set(listed)) == export.files.count()
        assert all(path.startswith(f"{tenant.schema_name}/exports/") for path in listed)
        assert described["tables"]["customers"]["rows"] == Customer.objects.count()
        columns = {c["name"]: c["type"] for c in described["tables"]["customers"]["columns"]}
        assert columns["score"] == "double" and columns["renewal_at"] == "timestamp[us, tz=UTC]"
        run_record = TaskRun.objects.get(pk=export.task_run_id)
        assert run_record.status == TaskRun.Status.SUCCEEDED and run_record.done == run_record.total > 0


def test_personal_traits_go_only_when_asked_by_someone_who_may_see_them(shop):
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        export = run(world["admin"], tables=["customers"], include_personal=True)
        ada = {r["external_id"]: r for r in read(export, "customers", tag)}[f"{tag}-ada"]
        assert ada["email"] == "ada@example.test"
        connection.set_schema_to_public()
        analyst = membership_of(tenant, make_member(tenant, f"{tag}-analyst@alpha.test", "analyst").email)
        connection.set_tenant(tenant)
        try:
            with pytest.raises(Forbidden) as refused:
                warehouse.export_create(actor=analyst, tables=["customers"], include_personal=True, now=later())
            assert refused.value.problems[0].path == "include_personal"
        finally:  # committed: leave alpha's members as they were (deleted with alpha's
            # schema on the path: the user's API keys there are nulled, see tests/browser/test_settings.py)
            User.objects.filter(pk=analyst.user_id).delete()


def test_personal_event_properties_are_hidden_unless_asked_for(shop):
    """As the events API shows them to a role without customers.view_pii: "hidden" at any depth."""
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        Event.objects.create(customer=world["ada"], name="signed", timestamp=DAY1, message_id=f"{tag}-pii",
                             properties={"email": "ada@example.test", "form": {"Phone": "+49 1"}, "plan": "pro"})
        masked = [e for e in read(run(world["admin"], tables=["events"]), "events", tag)
                  if e["message_id"] == f"{tag}-pii"][0]
        assert json.loads(masked["properties"]) == {"email": "hidden", "form": {"Phone": "hidden"}, "plan": "pro"}
        WarehouseExport.objects.all().delete()
        raw = [e for e in read(run(world["admin"], tables=["events"], include_personal=True), "events", tag)
               if e["message_id"] == f"{tag}-pii"][0]
        assert json.loads(raw["properties"])["email"] == "ada@example.test"


def test_events_are_exported_once_across_exports(shop):
    """The second export carries only what arrived after the first one's end."""
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        first = run(world["admin"], tables=["events"])
        assert len(read(first, "events", tag)) == 5
        Event.objects.create(customer=world["cy"], name="came_back", timestamp=DAY2, message_id=f"{tag}-late")
        arrived = first.events_until + timedelta(seconds=5)  # it arrives after the first export's end
        Event.objects.filter(message_id=f"{tag}-late").update(received_at=arrived)
        second = run(world["admin"], tables=["events"], now=arrived + warehouse.EVENTS_SETTLE)
        assert second.events_after == first.events_until
        assert [e["message_id"] for e in read(second, "events", tag)] == [f"{tag}-late"]


def test_an_interrupted_export_resumes_without_duplicate_files(shop, monkeypatch):
    """Killed while writing memberships (after customers and events were stored, and with a
    stray file the dead attempt stored but never recorded): the rerun keeps the finished
    tables, redoes memberships, and the manifest lists every file once."""
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        export = warehouse.export_create(actor=world["admin"], tables=["customers", "events", "memberships"],
                                         now=later())
        real = warehouse.write_table

        def dies_on_memberships(reader, table, **kwargs):
            if table.name == "memberships":
                storage = kwargs["storage"]
                storage.save(f"{kwargs['prefix']}/memberships/export_date=x/part-00009.parquet", ContentFile(b"half"))
                raise SystemExit("worker killed")
            return real(reader, table, **kwargs)

        monkeypatch.setattr(warehouse, "write_table", dies_on_memberships)
        with pytest.raises(SystemExit):
            warehouse.export_run(export_id=export.pk, clock=django_timezone.now)
        export.refresh_from_db()
        assert export.status == WarehouseExport.Status.RUNNING  # as a killed worker leaves it
        assert export.tables_done == ["customers", "events"]
        kept = {f.path: (f.pk, f.sha256) for f in export.files.all()}

        monkeypatch.setattr(warehouse, "write_table", real)
        export = warehouse.export_run(export_id=export.pk, clock=django_timezone.now)  # the redelivery
        assert export.status == WarehouseExport.Status.SUCCEEDED, export.error
        assert {f.path: (f.pk, f.sha256) for f in export.files.exclude(table="memberships")} == kept
        listed = [f["path"] for t in manifest(export)["tables"].values() for f in t["files"]]
        assert len(listed) == len(set(listed))
        storage = warehouse.warehouse_storage()
        folders, _ = storage.listdir(f"{warehouse.export_prefix(export)}/memberships")
        assert "export_date=x" not in folders or not storage.listdir(
            f"{warehouse.export_prefix(export)}/memberships/export_date=x")[1]
        assert len(read(export, "memberships", "", key="segment_key")) >= 2


def test_a_failed_export_is_recorded_and_can_be_retried(shop, monkeypatch):
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        export = warehouse.export_create(actor=world["admin"], tables=["segments"], now=later())
        monkeypatch.setattr(warehouse, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError):
            warehouse.export_run(export_id=export.pk, clock=django_timezone.now)
        export.refresh_from_db()
        assert export.status == WarehouseExport.Status.FAILED and "disk full" in export.error
        assert TaskRun.objects.get(pk=export.task_run_id).status == TaskRun.Status.FAILED
        monkeypatch.undo()
        export = warehouse.export_retry(actor=world["admin"], export=export)
        assert export.status == WarehouseExport.Status.QUEUED
        with pytest.raises(Conflict):
            warehouse.export_retry(actor=world["admin"], export=export)
        assert warehouse.export_run(export_id=export.pk, clock=django_timezone.now).status == "succeeded"


@pytest.mark.parametrize("options, path, code", [
    ({"tables": []}, "tables", "required"),
    ({"tables": "customers"}, "tables", "required"),
    ({"tables": ["customers", "secrets"]}, "tables[1]", "unknown_table"),
    ({"tables": ["customers"], "include_personal": "yes"}, "include_personal", "invalid_value"),
])
def test_bad_requests_are_coded_and_store_nothing(shop, options, path, code):
    tenant, _tag, world = shop
    with schema_context(tenant.schema_name):
        with pytest.raises(DomainError) as refused:
            warehouse.export_create(actor=world["admin"], now=later(), **options)
        assert (refused.value.problems[0].path, refused.value.problems[0].code) == (path, code)
        assert not WarehouseExport.objects.exists()


def test_one_export_at_a_time(shop):
    tenant, _tag, world = shop
    with schema_context(tenant.schema_name):
        warehouse.export_create(actor=world["admin"], tables=["segments"], now=later())
        with pytest.raises(Conflict) as refused:
            warehouse.export_create(actor=world["admin"], tables=["segments"], now=later())
        assert refused.value.problems[0].code == "export_running"


def test_the_schedule_queues_exports_when_due(shop):
    tenant, _tag, world = shop
    with schema_context(tenant.schema_name):
        now = later()
        schedule = warehouse.schedule_update(actor=world["admin"], enabled=True, every="hour",
                                             tables=["segments", "customers"], include_personal=False, now=now)
        assert schedule.next_run_at == now and schedule.tables == ["customers", "segments"]
        export = warehouse.exports_due(now=now)
        assert export is not None and export.trigger == "scheduled" and export.tables == ["customers", "segments"]
        assert warehouse.exports_due(now=now + timedelta(hours=2)) is None  # the first still runs
        warehouse.export_run(export_id=export.pk, clock=django_timezone.now)
        assert warehouse.exports_due(now=now + timedelta(minutes=30)) is None  # not due yet
        assert warehouse.exports_due(now=now + timedelta(hours=1)) is not None
        with pytest.raises(DomainError) as refused:
            warehouse.schedule_update(actor=world["admin"], enabled="on", every="fortnight", tables=["x"],
                                      include_personal=False, now=now)
        assert [p.path for p in refused.value.problems] == ["enabled", "every"]
        with pytest.raises(DomainError) as refused:  # JSON of any shape is a coded problem, never a crash
            warehouse.schedule_update(actor=world["admin"], enabled=True, every={"a": 1}, tables=[{"b": 2}],
                                      include_personal=False, now=now)
        assert [p.path for p in refused.value.problems] == ["every"]
