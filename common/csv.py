"""The one CSV writer of the product. Every cell of text that a spreadsheet would run as a
formula (it starts with = + - @, a tab or a carriage return) is prefixed with an apostrophe,
so an export never carries a customer's or a user's input out as code (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_rows(file: TextIO, rows: Iterable[Sequence[Any]]) -> None:
    """Every row into an open text file (opened with newline="")."""
    writer = csv.writer(file)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])


def stream_rows(rows: Iterable[Sequence[Any]], *, rows_per_chunk: int = 1000) -> Iterator[str]:
    """The rows as CSV text in chunks of up to `rows_per_chunk` lines, for a streaming
    response: memory stays bounded whatever the export's size."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    pending = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        pending += 1
        if pending == rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue()
