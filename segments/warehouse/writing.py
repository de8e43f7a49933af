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

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import orjson
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files import File
from django.db import connection
from psycopg.conninfo import make_conninfo

from common.masking import mask_properties
from segments.warehouse.tables import Table

ROW_GROUP_ROWS = 100_000  # rows per Parquet row group (ADBC hands over ~16 MB batches)
FILE_ROWS = 5_000_000  # a file is rolled past this, so no single file grows without bound
COMPRESSION = "zstd"


# libpq's own connection keywords: Django's parameters also carry psycopg-only ones.
_LIBPQ_KEYS = ("dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey",
               "sslpassword", "options", "application_name", "connect_timeout", "target_session_attrs")


@contextmanager
def snapshot_reader() -> Iterator:
    """A second connection to the tenant's schema in one REPEATABLE READ, READ ONLY
    transaction — every table of an export reads the same moment, while the bookkeeping on
    Django's connection (files recorded, progress) commits as it goes. It is an ADBC
    connection: PostgreSQL's rows arrive as Arrow record batches (binary COPY decoded in
    C++), never as Python objects."""
    params = {key: value for key, value in connection.get_connection_params().items()
              if key in _LIBPQ_KEYS and value not in (None, "")}
    schema = connection.schema_name
    with adbc.connect(make_conninfo(**params), autocommit=True) as reader, reader.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute(f"SET LOCAL search_path TO {_identifier(schema)}, public")
        try:
            yield cursor
        finally:
            cursor.execute("ROLLBACK")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statement(table: Table) -> str:
    """The table's query with its parameters inlined as literals (ADBC streams a query as
    binary COPY only without bind parameters), quoted by psycopg."""
    connection.ensure_connection()
    return psycopg.ClientCursor(connection.connection).mogrify(table.sql, table.params)


def count_rows(reader, table: Table) -> int:
    reader.execute(f"SELECT count(*) FROM ({statement(table)}) t")
    return reader.fetchone()[0]


@dataclass(frozen=True)
class Written:
    partition: str
    path: str
    rows: int
    row_groups: int
    bytes: int
    sha256: str


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _masked(text: str | None, hidden: frozenset[str]) -> str | None:
    if text is None:
        return None
    return orjson.dumps(mask_properties(orjson.loads(text), hidden)).decode()


def _conformed(batch: pa.RecordBatch, table: Table) -> pa.RecordBatch:
    """The batch under the table's schema: its names and exact types (an `integer` column
    arrives as int32; a custom datetime trait as ISO text, parsed here — a malformed one
    is null)."""
    arrays = []
    for column, field in zip(batch.columns, table.schema):
        if field.name in table.parse_times:
            column = pa.array([_parse_time(v) for v in column.to_pylist()], type=field.type)
        elif field.name in table.masked_json:
            column = pa.array([_masked(v, table.hidden_keys) for v in column.to_pylist()], type=field.type)
        elif column.type != field.type:
            column = column.cast(field.type)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=table.schema)


class _OpenFile:
    """One Parquet file being written to a local temporary file; batches are gathered into
    row groups of ROW_GROUP_ROWS."""

    def __init__(self, table: Table, partition: str, name: str) -> None:
        self.partition, self.name, self.rows, self.row_groups = partition, name, 0, 0
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        handle, self.local = tempfile.mkstemp(suffix=".parquet", prefix="strata-export-")
        os.close(handle)
        self.writer = pq.ParquetWriter(self.local, table.schema, compression=COMPRESSION)

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.pending_rows:
            self.writer.write_table(pa.Table.from_batches(self.pending), row_group_size=ROW_GROUP_ROWS)
            self.row_groups += -(-self.pending_rows // ROW_GROUP_ROWS)
        self.pending, self.pending_rows = [], 0

    def store(self, storage) -> Written:
        self._flush()
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


def write_table(reader, table: Table, *, storage, prefix: str, export_day: date,
                on_file: Callable[[Written], None], on_rows: Callable[[int], None]) -> int:
    """Stream `table` into files under `prefix`; calls `on_file` as each is stored (in
    partition order) and `on_rows` after each batch. Returns the rows written."""
    snapshot = f"export_date={export_day.isoformat()}"
    current: _OpenFile | None = None
    sequence = total = 0
    try:
        reader.execute(statement(table))
        for batch in reader.fetch_record_batch():
            batch = _conformed(batch, table)
            for partition, part in _split(batch, table.date_column, snapshot):
                if current is not None and (current.partition != partition or current.rows >= FILE_ROWS):
                    on_file(current.store(storage))
                    current = None
                if current is None:
                    sequence += 1
                    current = _OpenFile(table, partition, f"{prefix}/{table.name}/{partition}/part-{sequence:05d}.parquet")
                current.write(part)
            total += batch.num_rows
            on_rows(total)
        if current is not None:  # an empty table has no file: the manifest still gives its schema
            on_file(current.store(storage))
            current = None
    finally:
        if current is not None:
            current.discard()
    return total


def _split(batch: pa.RecordBatch, date_column: str | None, snapshot: str):
    """Consecutive runs of rows sharing a partition: Hive-style `date=YYYY-MM-DD` of the
    table's date column in UTC (rows come in date order), else the export's day."""
    if date_column is None or batch.num_rows == 0:
        yield snapshot, batch
        return
    days = batch.column(date_column).cast(pa.date32()).to_numpy(zero_copy_only=False).astype("int64")
    edges = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist(), len(days)]
    for start, end in zip(edges, edges[1:]):
        day = date.fromordinal(date(1970, 1, 1).toordinal() + int(days[start]))
        yield f"date={day.isoformat()}", batch.slice(start, end - start)
