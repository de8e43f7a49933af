"""Reading Parquet files (a warehouse dump) for the import: the whole-file check at upload
and the streaming row reader. Cells come out as the text a CSV would hold, so mapping,
type checks and the per-row report are the CSV import's own (customers.imports.mapping).

Every row group is decoded once at upload, one at a time: a corrupt file is refused with
the row group that fails before anything is imported, in bounded memory.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from common.errors import Code, CustomerCode, DomainError, TooLarge
from customers.imports.parsing import SAMPLE_ROWS, BadRecord, check_header

MAGIC = b"PAR1"
BATCH_ROWS = 5_000


def looks_like_parquet(head: bytes) -> bool:
    return head[:4] == MAGIC


def measure(chunks, *, max_bytes: int) -> tuple[int, str]:
    """Size and SHA-256 of the whole upload, refused past `max_bytes`."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                                  message=f"Files may be at most {max_bytes // (1024 * 1024):,} MB.")
        digest.update(chunk)
    return size, digest.hexdigest()


def _corrupt(path: str, message: str) -> DomainError:
    return DomainError.single(path=path, code=CustomerCode.CORRUPT_PARQUET, message=message)


def _open(stream: BinaryIO) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(stream)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _corrupt("file", f"The file is not a readable Parquet file: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


@dataclass(frozen=True)
class Inspected:
    header: list[str]
    sample: list[list[str]]
    rows: int


def inspect(stream: BinaryIO) -> Inspected:
    """Header, sample rows (as text) and row count; every row group is decoded once."""
    parquet = _open(stream)
    header = list(parquet.schema_arrow.names)
    check_header(header)
    sample: list[list[str]] = []
    for index in range(parquet.num_row_groups):
        group = _row_group(parquet, index)
        if len(sample) < SAMPLE_ROWS:
            sample += [_cells(row, header) for row in group.slice(0, SAMPLE_ROWS - len(sample)).to_pylist()]
    rows = parquet.metadata.num_rows
    if rows == 0:
        raise DomainError.single(path="file", code=CustomerCode.NO_ROWS, message="The file has no rows to import.")
    return Inspected(header=header, sample=sample, rows=rows)


def _row_group(parquet: pq.ParquetFile, index: int) -> pa.Table:
    try:
        return parquet.read_row_group(index)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _corrupt(f"file.row_groups[{index}]",
                       f"Row group {index + 1} of {parquet.num_row_groups} cannot be read: {_reason(error)}") from None


def records(stream: BinaryIO) -> Iterator[tuple[int, list[str] | BadRecord]]:
    """(row number from 1, cells as text) of every row, streamed a batch at a time."""
    parquet = _open(stream)
    header = list(parquet.schema_arrow.names)
    row = 0
    for index in range(parquet.num_row_groups):
        try:
            batches = list(_batches(parquet, index))
        except DomainError as error:
            # Passed at upload, failing now (the stored file changed?): every row of the group
            # is reported, with the reason, rather than the import stopping half-way.
            group_rows = parquet.metadata.row_group(index).num_rows
            for _ in range(group_rows):
                row += 1
                yield row, BadRecord(error.problems[0].message)
            continue
        for batch in batches:
            for values in batch.to_pylist():
                row += 1
                yield row, _cells(values, header)


def _batches(parquet: pq.ParquetFile, index: int):
    try:
        yield from parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[index])
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _corrupt(f"file.row_groups[{index}]", f"Row group {index + 1} cannot be read: {_reason(error)}") from None


def count_records(stream: BinaryIO) -> int:
    return _open(stream).metadata.num_rows


def _cells(row: dict[str, Any], header: list[str]) -> list[str]:
    return [text_of(row.get(name)) for name in header]


def text_of(value: Any) -> str:
    """A Parquet value as the text a CSV cell would hold: ISO 8601 times (a naive one is
    UTC, as warehouses write them), JSON for lists and structs, "" for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat() if value.tzinfo else value.isoformat() + "+00:00"
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(value).decode()
    return orjson.dumps(value, default=str).decode()  # lists, structs (dicts), maps (pairs)
