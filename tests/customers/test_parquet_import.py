"""Parquet import (a warehouse dump) through the CSV import's own path: the file is
recognised by its bytes, every row group checked at upload, typed values read as cells,
mapped and type-checked like CSV, problems reported per row; a corrupt file is refused
with the row group, and nothing is stored."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given, settings as hypothesis_settings, strategies as st

from common.errors import DomainError
from customers.imports import mapping as maps
from customers.imports.models import ImportJob, ImportRowError
from customers.imports.parquet import text_of
from customers.imports.services import import_run, import_start, import_suggestion, import_upload
from customers.models import Customer, Event, TraitDefinition
from tests.conftest import session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size, compression="zstd")
    return sink.getvalue()


def upload(actor, data: bytes, kind: str = "customers", name: str = "dump.parquet") -> ImportJob:
    return import_upload(actor=actor, kind=kind, upload=SimpleUploadedFile(name, data, "application/octet-stream"),
                         now=NOW)


def run(actor, job: ImportJob, mapping: dict | None = None) -> ImportJob:
    job = import_start(actor=actor, job=job, mapping=mapping if mapping is not None else import_suggestion(job=job),
                       now=NOW)
    return import_run(job_id=job.pk, clock=lambda: NOW, chunk_rows=2)


CUSTOMERS = pa.table({
    "external_id": ["p-1", "p-2", "p-3"],
    "email": ["ada@example.test", "not an email", None],
    "plan": ["pro", "free", None],
    "company_size": pa.array([40, None, 7], pa.int64()),
    "annual_revenue": pa.array([1.5e6, 2.0, None], pa.float64()),
    "email_opt_in": pa.array([True, False, None], pa.bool_()),
    "signed_up_at": pa.array([datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), None,
                              datetime(2025, 12, 31, tzinfo=timezone.utc)], pa.timestamp("us", tz="UTC")),
    "tech_stack": pa.array([["python", "postgres"], [], None], pa.list_(pa.string())),
    "lucky_number": pa.array([7, 8, 9], pa.int32()),
})


def test_a_parquet_dump_of_customers_imports_typed_values(alpha_admin):
    job = upload(alpha_admin, parquet_bytes(CUSTOMERS, row_group_size=2), name="customers.bin")
    assert (job.format, job.rows_total, job.header) == ("parquet", 3, CUSTOMERS.column_names)
    assert job.sample[0][:4] == ["p-1", "ada@example.test", "pro", "40"]
    assert job.sample[0][6] == "2026-01-02T03:04:05+00:00" and json.loads(job.sample[0][7]) == ["python", "postgres"]
    assert job.file.name.startswith("imports/t_alpha/")
    mapping = import_suggestion(job=job)
    assert mapping["company_size"] == "trait:company_size" and mapping["lucky_number"] == "trait:lucky_number"
    job = run(alpha_admin, job, mapping)
    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    assert (job.rows_imported, job.rows_failed) == (2, 1)
    assert list(ImportRowError.objects.filter(job=job).values_list("row", "column", "code")) == [
        (2, "email", "invalid_email")]
    ada = Customer.objects.get(external_id="p-1")
    assert (ada.email, ada.plan, ada.company_size, float(ada.annual_revenue), ada.email_opt_in) == (
        "ada@example.test", "pro", 40, 1.5e6, True)
    assert ada.signed_up_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert ada.tech_stack == ["python", "postgres"] and ada.traits == {"lucky_number": 7}
    assert TraitDefinition.objects.get(key="lucky_number").type == "number"


def test_events_from_a_warehouse_dump_keep_their_properties_object(alpha_admin):
    """The columns of Strata's own events export: `properties` is JSON text, mapped as a
    whole; a `properties.<key>` column wins over the object's key."""
    Customer.objects.create(external_id="p-9")
    events = pa.table({
        "event_id": pa.array([11, 12, 13], pa.int64()),
        "message_id": ["m-1", "m-2", None],
        "external_id": ["p-9", "p-9", "p-9"],
        "name": ["opened", "bought", "opened"],
        "timestamp": pa.array([datetime(2026, 11, 1, tzinfo=timezone.utc)] * 3, pa.timestamp("us", tz="UTC")),
        "properties": ['{"amount": 12.5, "items": ["a"]}', "{}", "[1, 2]"],
        "channel": ["web", "app", "web"],
    })
    job = upload(alpha_admin, parquet_bytes(events), kind="events")
    suggested = import_suggestion(job=job)
    assert (suggested["message_id"], suggested["event_id"], suggested["properties"]) == (
        "message_id", "properties.event_id", "properties")  # exact names first
    job = run(alpha_admin, job, {"message_id": "message_id", "external_id": "external_id", "name": "name",
                                 "timestamp": "timestamp", "properties": "properties",
                                 "channel": "properties.channel"})
    assert (job.rows_imported, job.rows_failed) == (2, 1), job.error
    assert list(ImportRowError.objects.filter(job=job).values_list("row", "column", "code")) == [
        (3, "properties", "type_mismatch")]
    bought = Event.objects.get(message_id="m-1")
    assert bought.properties == {"amount": 12.5, "items": ["a"], "channel": "web"}
    assert bought.timestamp == datetime(2026, 11, 1, tzinfo=timezone.utc)


def corrupt_second_row_group(data: bytes) -> bytes:
    """Overwrite bytes inside the second row group's column chunk (the footer stays valid)."""
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    column = metadata.row_group(1).column(0)
    start = column.data_page_offset + 8
    broken = bytearray(data)
    broken[start:start + 64] = b"\xff" * 64
    return bytes(broken)


def test_a_corrupt_row_group_is_refused_at_upload_and_nothing_is_stored(alpha_admin):
    table = pa.table({"external_id": [f"c-{i}" for i in range(400)], "plan": ["pro"] * 400})
    data = corrupt_second_row_group(parquet_bytes(table, row_group_size=200))
    with pytest.raises(DomainError) as refused:
        upload(alpha_admin, data)
    problem = refused.value.problems[0]
    assert (problem.path, problem.code) == ("file.row_groups[1]", "corrupt_parquet")
    assert "Row group 2 of 2" in problem.message
    assert not ImportJob.objects.exists()
    assert not default_storage.exists("imports/t_alpha") or not default_storage.listdir("imports/t_alpha")[1]


def test_a_truncated_parquet_file_is_refused_with_a_code(alpha_admin):
    data = parquet_bytes(pa.table({"external_id": ["a", "b"]}))
    with pytest.raises(DomainError) as refused:
        upload(alpha_admin, data[: len(data) // 2])
    assert (refused.value.problems[0].path, refused.value.problems[0].code) == ("file", "corrupt_parquet")
    assert not ImportJob.objects.exists()


def test_a_parquet_file_with_no_rows_or_bad_columns_is_refused(alpha_admin):
    with pytest.raises(DomainError) as refused:
        upload(alpha_admin, parquet_bytes(pa.table({"external_id": pa.array([], pa.string())})))
    assert refused.value.problems[0].code == "no_rows"
    with pytest.raises(DomainError) as refused:
        upload(alpha_admin, parquet_bytes(pa.table([pa.array(["a"]), pa.array(["b"])], names=["id", "ID"])))
    assert refused.value.problems[0].code == "duplicate_column"


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1).map(lambda v: (v, maps.TraitType.NUMBER)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (v, maps.TraitType.NUMBER)),
    st.booleans().map(lambda v: (v, maps.TraitType.BOOLEAN)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31),
                 timezones=st.just(timezone.utc)).map(lambda v: (v, maps.TraitType.DATETIME)),
))
def test_a_parquet_value_reads_back_as_itself(case):
    """What the importer reads from a Parquet cell (its text) converts back to the same value."""
    value, value_type = case
    converted, problem = maps.convert(text_of(value), value_type)
    assert problem is None
    if value_type is maps.TraitType.DATETIME:
        assert datetime.fromisoformat(converted) == value
    elif value_type is maps.TraitType.NUMBER:
        assert converted == value
    else:
        assert converted is value


def test_the_api_takes_a_parquet_file_with_its_mapping(tenant):
    data = parquet_bytes(pa.table({"user": ["api-1", "api-2"], "plan": ["pro", "team"]}))
    response = session(tenant).post("/api/v1/imports/", {
        "kind": "customers", "mapping": json.dumps({"user": "external_id", "plan": "trait:plan"}),
        "file": SimpleUploadedFile("dump.parquet", data, "application/vnd.apache.parquet")})
    assert response.status_code == 202, response.content
    assert (response.json()["rows_total"], response.json()["header"]) == (2, ["user", "plan"])
    connection.set_tenant(tenant)
    assert ImportJob.objects.get().format == "parquet"
    broken = session(tenant).post("/api/v1/imports/", {
        "kind": "customers", "file": SimpleUploadedFile("dump.parquet", data[:-20], "application/octet-stream")})
    assert broken.status_code == 400 and broken.json()["errors"][0]["code"] == "corrupt_parquet"
