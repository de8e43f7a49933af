"""Reading CSV files: the whole-file scan at upload, header/delimiter detection and the
streaming row reader. Pure (bytes and text in, values out); problems are DomainErrors
with a path (`file`, `header[2]`) and a code.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from common.errors import Code, CustomerCode, DomainError, Problem, TooLarge

SNIFF_BYTES = 64 * 1024
SAMPLE_ROWS = 20  # rows read at upload for the mapping screen and type inference
DELIMITERS = (",", ";", "\t", "|")
UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
MAX_COLUMNS = 500
MAX_COLUMN_NAME = 255
# A header cell that looks like data: the file probably has no header row.
_VALUE_LIKE = re.compile(r"^\s*([+-]?\d+([.,]\d+)?|[^@\s]+@[^@\s]+\.[^@\s]+|\d{4}-\d{2}-\d{2}.*)\s*$")


def _bad(path: str, code: str, message: str) -> DomainError:
    return DomainError.single(path=path, code=code, message=message)


@dataclass(frozen=True)
class Scan:
    size: int
    sha256: str
    has_bom: bool


def scan(chunks: Iterable[bytes], *, max_bytes: int) -> Scan:
    """One pass over the whole upload: size, SHA-256, and a strict UTF-8 check, so a bad
    byte near the end is refused before anything is imported (nothing half-written)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = lines = 0
    first = b""
    for chunk in chunks:
        if not chunk:
            continue
        if size == 0 and chunk[:2] in _UTF16_BOMS:
            raise _bad("file", Code.NOT_UTF8, "The file is UTF-16; save it as CSV UTF-8 and upload it again.")
        if len(first) < 4:
            first += chunk[:4]
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                                  message=f"Files may be at most {max_bytes // (1024 * 1024):,} MB.")
        digest.update(chunk)
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as error:
            line = lines + chunk[: error.start].count(b"\n") + 1
            raise _bad("file", Code.NOT_UTF8, f"Line {line:,} is not valid UTF-8 text; save the file as CSV UTF-8 "
                                           "and upload it again.") from None
        if b"\x00" in chunk:
            raise _bad("file", CustomerCode.NOT_TEXT, "The file contains NUL bytes: it is not a CSV text file.")
        lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _bad("file", Code.NOT_UTF8,
                   "The file ends in the middle of a character: it is not valid UTF-8.") from None
    has_bom = first.startswith(UTF8_BOM)
    if size == 0 or size == len(UTF8_BOM) and has_bom:
        raise _bad("file", CustomerCode.EMPTY_FILE, "The file is empty.")
    return Scan(size=size, sha256=digest.hexdigest(), has_bom=has_bom)


@dataclass(frozen=True)
class Detected:
    delimiter: str
    header: list[str]
    sample: list[list[str]]


def _text_of_head(head: bytes) -> str:
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    # The head may end inside a multi-byte character: decode what is complete.
    return codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)


def _complete_lines(text: str, truncated: bool) -> str:
    if truncated and "\n" in text:
        return text[: text.rindex("\n") + 1]
    return text


def _rows_with(text: str, delimiter: str, limit: int) -> list[list[str]]:
    rows = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if row:
                rows.append(row)
            if len(rows) > limit:
                break
    except csv.Error:
        pass
    return rows


def sniff_delimiter(text: str) -> str:
    """The candidate that splits the header into the most columns and every sample row
    into as many; a comma when nothing splits (a one-column file)."""
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        rows = _rows_with(text, delimiter, SAMPLE_ROWS)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(1 for row in rows[1:] if len(row) == width)
        score = (consistent == len(rows) - 1, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect(head: bytes, *, truncated: bool) -> Detected:
    """Delimiter, header and sample rows from the first bytes of the file.
    `truncated`: `head` is not the whole file (its last line may be cut)."""
    text = _complete_lines(_text_of_head(head), truncated)
    if not text.strip():
        raise _bad("file", CustomerCode.EMPTY_FILE, "The file is empty.")
    delimiter = sniff_delimiter(text)
    rows = _rows_with(text, delimiter, SAMPLE_ROWS)
    if not rows:
        raise _bad("file", CustomerCode.EMPTY_FILE, "The file is empty.")
    header = [cell.strip() for cell in rows[0]]
    check_header(header)
    sample = [row for row in rows[1 : SAMPLE_ROWS + 1] if any(cell.strip() for cell in row)]
    if not sample:
        raise _bad("file", CustomerCode.NO_ROWS, "The file has a header but no rows to import.")
    return Detected(delimiter=delimiter, header=header, sample=sample)


def check_header(header: list[str]) -> None:
    problems = []
    if len(header) > MAX_COLUMNS:
        raise _bad("header", Code.TOO_MANY_COLUMNS, f"Files may have at most {MAX_COLUMNS} columns.")
    if all(not name for name in header):
        raise _bad("header", CustomerCode.NO_HEADER, "The first row must name the columns; it is empty.")
    looks_like_data = [name for name in header if _VALUE_LIKE.match(name)]
    if looks_like_data:
        raise _bad("header", CustomerCode.NO_HEADER,
                   f"The first row must name the columns; “{looks_like_data[0][:40]}” "
                                          "looks like a value. Add a header row.")
    seen: dict[str, int] = {}
    for index, name in enumerate(header):
        path = f"header[{index}]"
        if not name:
            problems.append(Problem(path, CustomerCode.BLANK_COLUMN, f"Column {index + 1} has no name."))
        elif len(name) > MAX_COLUMN_NAME:
            problems.append(Problem(path, Code.TOO_LONG, f"Column names may be at most {MAX_COLUMN_NAME} characters."))
        elif name.casefold() in seen:
            problems.append(Problem(path, CustomerCode.DUPLICATE_COLUMN,
                                    f"“{name}” is also column {seen[name.casefold()] + 1}: name each column once."))
        else:
            seen[name.casefold()] = index
    if problems:
        raise DomainError(problems=problems)


@dataclass(frozen=True)
class BadRecord:
    """A record the CSV reader could not split (e.g. an over-long field)."""

    message: str


def records(stream: BinaryIO, *, delimiter: str) -> Iterator[tuple[int, list[str] | BadRecord]]:
    """(spreadsheet row number, cells) of every data record after the header, streamed.
    The header is row 1; blank lines are skipped but still counted."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    row = 0
    header_seen = False
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            row += 1
            if header_seen:
                yield row, BadRecord(f"The row cannot be read as CSV: {error}.")
            continue
        row += 1
        if not header_seen:
            header_seen = True
            continue
        if not cells or all(not cell.strip() for cell in cells):
            continue
        yield row, cells


def count_records(stream: BinaryIO, *, delimiter: str) -> int:
    """How many data records `records` will yield (one fast pass, for the progress bar)."""
    return sum(1 for _ in records(stream, delimiter=delimiter))
