"""Renaming a schema inside a plain pg_dump, line by line, as the dump streams past.

Pure: bytes in, bytes out, no database."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tenants.pgdump.postgres import BackupError, checked_identifier

DUMP_COMPLETE = b"-- PostgreSQL database dump complete"
COPY_START = re.compile(rb"COPY .+ FROM stdin;")
CREATE_SCHEMA = re.compile(rb'CREATE SCHEMA "?([^";\s]+)"?;')
# Lines whose schema name stands alone (not followed by a dot): the schema's own statements.
_SCHEMA_STATEMENTS = (b"CREATE SCHEMA ", b"ALTER SCHEMA ", b"COMMENT ON SCHEMA ", b"SET search_path",
                      b"SELECT pg_catalog.set_config('search_path'", b"GRANT ", b"REVOKE ",
                      b"ALTER DEFAULT PRIVILEGES ")


def rewrite_dump(lines: Iterable[bytes], *, source: str, target: str) -> Iterator[bytes]:
    """Yield the dump's lines with schema `source` renamed `target` in SQL statements.

    Rewritten: `source.` as a whole identifier (tables, sequences, functions, and
    `'source.seq'::regclass` / setval strings), `"source".`, and the bare name in the
    schema's own statements (CREATE SCHEMA, SET search_path…). Never rewritten: lines
    between `COPY … FROM stdin;` and `\\.` — customer data. A string literal in a
    statement (a default, a function body) that spells `source.` is rewritten too."""
    src, dst = checked_identifier(source).encode(), checked_identifier(target).encode()
    name = rb'(?<![\w$."\x80-\xff])(?:"' + src + rb'"|' + src + rb")"
    dotted, bare = re.compile(name + rb"(?=\.)"), re.compile(name + rb'(?![\w$"\x80-\xff])')

    def renamed(match: re.Match) -> bytes:
        return b'"' + dst + b'"' if match.group(0).startswith(b'"') else dst

    in_copy = False
    for line in lines:
        if in_copy:
            in_copy = line.rstrip(b"\r\n") != b"\\."
            yield line
            continue
        if src != dst and src in line:
            line = dotted.sub(renamed, line)
            if line.startswith(_SCHEMA_STATEMENTS):
                line = bare.sub(renamed, line)
        in_copy = bool(COPY_START.fullmatch(line.rstrip(b"\r\n")))
        yield line


def checked_lines(lines: Iterable[bytes], *, source: str, digest, state: dict) -> Iterator[bytes]:
    """Pass lines through, hashing them and noting the end marker and any schema created
    that is not the source (a dump of something else)."""
    in_copy = False
    for line in lines:
        digest.update(line)
        bare = line.rstrip(b"\r\n")
        if in_copy:
            in_copy = bare != b"\\."
        else:
            found = CREATE_SCHEMA.fullmatch(bare)
            if found and found.group(1).decode("ascii", errors="replace") != source:
                raise BackupError(f"the dump also creates schema {found.group(1)!r}; refusing")
            state["complete"] = state.get("complete") or bare == DUMP_COMPLETE
            in_copy = bool(COPY_START.fullmatch(bare))
        yield line
