"""Rows to Parquet files in storage: a consistent read on its own connection, Arrow record
batches of bounded size, one file open at a time, each file finished in a temporary file
and then stored whole (a reader never sees half a file)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files import File
from django.db import connection

from segments.warehouse.tables import Table

ROW_GROUP_ROWS = 100_000  # rows per fetch and per Parquet row group: ~10–40 MB of Arrow data
FILE_ROWS = 5_000_000  # a file is rolled past this, so no single file grows without bound
COMPRESSION = "zstd"


@contextmanager
def snapshot_reader() -> Iterator[psycopg.Connection]:
    """A second connection to the tenant's schema in one REPEATABLE READ, READ ONLY
    transaction: every table of an export reads the same moment, and the bookkeeping on
    Django's connection (files recorded, progress) commits as it goes."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    schema = connection.schema_name
    with psycopg.connect(**params) as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        reader.execute("SELECT set_config('search_path', %s, true)", [f'"{schema}", public'])
        try:
            yield reader
        finally:
            reader.rollback()


@dataclass(frozen=True)
class Written:
    partition: str
    path: str
    rows: int
    row_groups: int
    bytes: int
    sha256: str


def _day_of(value) -> date:
    return value.astimezone(timezone.utc).date() if isinstance(value, datetime) else value


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _batch(rows: list[tuple], table: Table) -> pa.RecordBatch:
    columns = list(zip(*rows))
    arrays = []
    for values, field in zip(columns, table.schema):
        if field.name in table.parse_times:
            values = [_parse_time(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=table.schema)


class _OpenFile:
    """One Parquet file being written to a local temporary file."""

    def __init__(self, table: Table, partition: str, name: str) -> None:
        self.partition, self.name, self.rows, self.row_groups = partition, name, 0, 0
        handle, self.local = tempfile.mkstemp(suffix=".parquet", prefix="strata-export-")
        os.close(handle)
        self.writer = pq.ParquetWriter(self.local, table.schema, compression=COMPRESSION)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
        self.rows += batch.num_rows
        self.row_groups += 1

    def store(self, storage) -> Written:
        self.writer.close()
        try:
            digest = hashlib.sha256()
            with open(self.local, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
            size = os.path.getsize(self.local)
            if storage.exists(self.name):  # left by a run that was killed before recording it
                storage.delete(self.name)
            with open(self.local, "rb") as stream:
                stored = storage.save(self.name, File(stream, name=os.path.basename(self.name)))
        finally:
            os.unlink(self.local)
        return Written(self.partition, stored, self.rows, self.row_groups, size, digest.hexdigest())

    def discard(self) -> None:
        try:
            self.writer.close()
        finally:
            os.unlink(self.local)


def write_table(reader: psycopg.Connection, table: Table, *, storage, prefix: str, export_day: date,
                on_file: Callable[[Written], None], on_rows: Callable[[int], None]) -> int:
    """Stream `table` into files under `prefix`; calls `on_file` as each is stored (in
    partition order) and `on_rows` after each batch. Returns the rows written."""
    snapshot = f"export_date={export_day.isoformat()}"
    date_index = table.schema.get_field_index(table.date_column) if table.date_column else None
    current: _OpenFile | None = None
    sequence = total = 0
    try:
        with reader.cursor(name=f"export_{table.name}") as cursor:
            cursor.itersize = ROW_GROUP_ROWS
            cursor.execute(table.sql, table.params)
            while rows := cursor.fetchmany(ROW_GROUP_ROWS):
                for partition, group in _split(rows, date_index, snapshot):
                    if current is not None and (current.partition != partition or current.rows >= FILE_ROWS):
                        on_file(current.store(storage))
                        current = None
                    if current is None:
                        sequence += 1
                        current = _OpenFile(table, partition, f"{prefix}/{table.name}/{partition}/"
                                                              f"part-{sequence:05d}.parquet")
                    current.write(_batch(group, table))
                total += len(rows)
                on_rows(total)
        if current is not None:  # an empty table has no file: the manifest still gives its schema
            on_file(current.store(storage))
            current = None
    finally:
        if current is not None:
            current.discard()
    return total


def _split(rows: list[tuple], date_index: int | None, snapshot: str):
    """Consecutive runs of rows sharing a partition: Hive-style `date=YYYY-MM-DD` of the
    table's date column in UTC (rows come in date order), else the export's day."""
    if date_index is None:
        yield snapshot, rows
        return
    start, day = 0, _day_of(rows[0][date_index])
    for index in range(1, len(rows)):
        here = _day_of(rows[index][date_index])
        if here != day:
            yield f"date={day.isoformat()}", rows[start:index]
            start, day = index, here
    yield f"date={day.isoformat()}", rows[start:]
