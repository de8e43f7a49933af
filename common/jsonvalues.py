"""JSON that PostgreSQL can hold: the one check every write path runs on what a client sent
before anything is stored, and the one body parser that never fails on nesting.

PostgreSQL refuses text with NUL (U+0000) and text that is not valid UTF-8 (a lone
surrogate such as "\\ud800", which JSON may escape); jsonb has no NaN or Infinity; and
Python's parsers recurse, so a body nested a thousand deep would raise RecursionError.
`value_problem` finds the first such thing in a value with its path; callers turn it into a
per-item rejection (ingestion) or a 400 (a single object), so it never reaches a 500.

Bounds (the README restates them): objects and lists nest at most `MAX_DEPTH` deep; text
and keys hold no NUL and no lone surrogate; numbers are finite.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from common.errors import Code, Problem

MAX_DEPTH = 32
# What a subtree nested past what the parsers manage becomes (see `loads`): text no client
# can send, because a NUL in text is refused.
TOO_DEEP_MARKER = "\x00strata:too_deep"
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONG_DIGITS = re.compile(rb"[0-9]{20}")
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_CUT_DEPTH = MAX_DEPTH + 2  # deeper than any value may be, far below the parsers' limits


def text_problem(text: str) -> tuple[str, str] | None:
    """(code, message) when `text` cannot be stored as PostgreSQL text, else None.
    The codes are DRF's own for the same refusal, so every API answers alike."""
    if "\x00" in text:
        return Code.NULL_CHARACTERS_NOT_ALLOWED, "Text may not contain NUL (\\u0000) characters."
    if not text.isascii() and _SURROGATE.search(text):
        return Code.SURROGATE_CHARACTERS_NOT_ALLOWED, "Text may not contain lone surrogates (\\ud800–\\udfff)."
    return None


def path_key(key: str) -> str:
    """A key as it may appear in a problem's path: escaped when it is itself hostile."""
    return json.dumps(key)[1:-1] if text_problem(key) else key


def value_problem(value: Any, path: str = "") -> Problem | None:
    """The first part of `value` PostgreSQL could not hold, with its path; None when all fits.
    Iterative, so a deep value cannot exhaust the stack; document order."""
    if _fits(value):
        return None
    return _first_problem(value, path)


def _fits(value: Any) -> bool:
    """True when nothing in `value` needs refusing: what `_first_problem` checks, without
    building a path for every key and item. Every tracked event passes here (~60 µs an event
    of the tracking endpoint's CPU went to the paths), so the paths are built only for a
    value that fails."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is dict:
            if any(type(key) is not str or not _text_fits(key) for key in node):
                return False
            children = node.values()
        elif kind is list:
            children = node
        else:
            children = (node,)
            depth -= 1  # a scalar at the top: checked as its own only child
        if depth >= MAX_DEPTH:
            return False
        for child in children:
            kind = type(child)
            if kind is str:
                if not _text_fits(child):
                    return False  # TOO_DEEP_MARKER holds a NUL too
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif kind is not int and kind is not bool and child is not None:
                return False  # a subclass of str, float, dict or list: the exact walk decides
    return True


def _text_fits(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or not _SURROGATE.search(text))


def _first_problem(value: Any, path: str) -> Problem | None:
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, str):
            if node == TOO_DEEP_MARKER:
                return _too_deep(where)
            found = text_problem(node)
            if found:
                return Problem(where, *found)
        elif isinstance(node, float):
            if not math.isfinite(node):
                return Problem(where, Code.INVALID_VALUE, "Numbers must be finite (no NaN, Infinity or 1e400).")
        elif isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                return _too_deep(where)
            children = []
            if isinstance(node, dict):
                for key, item in node.items():
                    child = f"{where}.{path_key(str(key))}" if where else path_key(str(key))
                    found = text_problem(key) if isinstance(key, str) else None
                    if found:
                        return Problem(child, found[0], "Keys: " + found[1])
                    children.append((item, child, depth + 1))
            else:
                children = [(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(node)]
            stack.extend(reversed(children))
    return None


def _too_deep(path: str) -> Problem:
    return Problem(path, Code.TOO_DEEP, f"Objects and lists nest at most {MAX_DEPTH} deep.")


def loads(raw: bytes | str) -> Any:
    """Parse a JSON body. orjson first; the json module for what orjson refuses or changes
    but JSON clients send (NaN, integers past 64 bits, lone surrogates: `value_problem`
    then names what cannot be stored, per item). A body nested past the parsers' recursion
    has its too-deep subtrees replaced by TOO_DEEP_MARKER, so only the items holding them
    are refused. Raises ValueError when the body is not JSON."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    # TRICKY: orjson reads an integer past 64 bits as a float (10**20 → 1e20, digits lost);
    # only the json module keeps it exact. Twenty digits in a row may be such an integer.
    if not _LONG_DIGITS.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data)
    except RecursionError:
        pass
    try:
        return json.loads(_cut_deep(data))
    except RecursionError:  # pragma: no cover - _cut_deep leaves nothing deeper than _CUT_DEPTH
        raise ValueError("nested too deep") from None


def _cut_deep(raw: bytes) -> bytes:
    """`raw` with every array or object that opens deeper than _CUT_DEPTH replaced by the
    marker. Scans tokens (strings and brackets) with one regex, so it is linear and
    never recurses; unbalanced input is returned as it is, for the parser to refuse."""
    marker = json.dumps(TOO_DEEP_MARKER).encode()
    pieces, depth, start, last = [], 0, None, 0
    for token in _TOKEN.finditer(raw):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth == _CUT_DEPTH and start is None:
                start = token.start()
        elif char in (b"]", b"}"):
            if depth == _CUT_DEPTH and start is not None:
                pieces += [raw[last:start], marker]
                last, start = token.end(), None
            depth -= 1
    return b"".join(pieces) + raw[last:]
