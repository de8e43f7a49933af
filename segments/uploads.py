"""A one-column CSV of external ids or emails, as the static-member upload of the API and of
the segment page both read it."""

from __future__ import annotations

import csv
import io

from common.errors import Code, DomainError, SegmentCode, TooLarge
from segments.selectors.members import UploadRow

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_ROWS = 100_000
HEADER_NAMES = {"external_id", "external id", "email", "id", "customer", "customer_id"}


def read_upload(upload) -> list[UploadRow]:
    """The values of a one-column CSV of external ids or emails, with their row numbers;
    a first row naming the column (external_id, email, …) is a header."""
    if upload is None:
        raise DomainError.single(path="file", code=Code.REQUIRED, message="Upload a CSV file in the `file` field.")
    if upload.size > MAX_UPLOAD_BYTES:
        raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                              message=f"Files may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError.single(path="file", code=Code.NOT_UTF8, message="The file must be UTF-8 text.") from None
    rows = []
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            values = [c.strip() for c in cells]
            while values and not values[-1]:
                values.pop()
            if not values:
                continue
            if len(values) > 1:
                raise DomainError.single(path=f"file.row[{number}]", code=Code.TOO_MANY_COLUMNS,
                                         message="Upload one column: external ids or emails.")
            if not rows and number == 1 and values[0].lower() in HEADER_NAMES:
                continue
            rows.append(UploadRow(row=number, value=values[0]))
            if len(rows) > MAX_UPLOAD_ROWS:
                raise DomainError.single(path="file", code=SegmentCode.TOO_MANY_ROWS,
                                         message=f"Upload at most {MAX_UPLOAD_ROWS:,} rows at once.")
    except csv.Error as error:
        raise DomainError.single(path="file", code=SegmentCode.INVALID_CSV,
                                 message=f"Not a CSV file: {error}.") from None
    if not rows:
        raise DomainError.single(path="file", code=Code.EMPTY, message="The file names no customers.")
    return rows
