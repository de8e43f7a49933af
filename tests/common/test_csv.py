"""The product's one CSV writer: no cell a spreadsheet would run as a formula gets out."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from common.csv import FORMULA_STARTS, safe_cell, stream_rows, write_rows

# Cells as an attacker writes them: a formula start, then anything, including quotes,
# separators and line breaks that try to end the cell early.
hostile = st.builds(lambda start, rest: start + rest, st.sampled_from(FORMULA_STARTS + ("", "'", " ")),
                    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
cells = st.one_of(hostile, st.integers(), st.floats(allow_nan=False), st.none())
rows = st.lists(st.lists(cells, min_size=1, max_size=6), min_size=1, max_size=20)


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _expected(cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return str(cell)


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(min_value=1, max_value=7))
def test_streamed_cells_read_back_neutralised(table, rows_per_chunk):
    """Every text cell reads back as written, with an apostrophe before a formula start;
    no text cell read back starts like a formula, however the stream is chunked."""
    text = "".join(stream_rows(table, rows_per_chunk=rows_per_chunk))
    back = _read(text)
    assert back == [[_expected(cell) for cell in row] for row in table]
    texts = [read for row, read_row in zip(table, back) for cell, read in zip(row, read_row) if isinstance(cell, str)]
    assert not any(read.startswith(FORMULA_STARTS) for read in texts)


@settings(max_examples=100, deadline=None)
@given(rows)
def test_file_writer_matches_the_stream(table):
    """The file writer (import error reports) writes what the stream writes."""
    file = io.StringIO(newline="")
    write_rows(file, table)
    assert file.getvalue() == "".join(stream_rows(table))


def test_numbers_are_left_as_numbers():
    """A negative number is data, not a formula a user typed: it stays a number."""
    assert safe_cell(-5) == -5 and safe_cell(-0.5) == -0.5
    assert safe_cell("-5") == "'-5" and safe_cell("=1+1") == "'=1+1" and safe_cell("\t=1") == "'\t=1"


def test_chunks_hold_at_most_the_rows_asked_for():
    """A streaming export keeps memory bounded: each chunk holds at most rows_per_chunk rows."""
    chunks = list(stream_rows(([i] for i in range(2500)), rows_per_chunk=1000))
    assert [chunk.count("\r\n") for chunk in chunks] == [1000, 1000, 500]
