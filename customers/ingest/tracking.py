"""Segment's HTTP tracking spec → `ingest.Message`s. Pure parsing; no database.

What happens to bad input (also in the README):
- the request as a whole (not JSON, not an object, no `batch` list, over 500 KB, a gzip
  body that is corrupt or inflates past the limit) → 400, nothing stored;
- a missing or unknown write key → 401, nothing stored;
- an item inside an otherwise valid batch (unknown type, missing event name, no
  userId/anonymousId, over 32 KB, a bad timestamp, a trait of the wrong type) → that item
  is skipped and reported in `rejected` with its index, path and code; every valid item is
  stored, and the answer is 200 `{"success": true, ...}`. When no item is valid the answer
  is 400 with the same details.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from common.errors import Code
from common.jsonvalues import loads, value_problem
from common.moments import MOMENT_RANGE, in_range
from customers.ingest.message import ItemProblem, Message
from segments.rules.vocabulary import parse_datetime

MAX_BATCH_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
TYPES = ("track", "identify", "page", "screen", "group", "alias")


class RequestRejected(Exception):
    def __init__(self, status: int, path: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.path, self.code, self.message = status, path, code, message


# ------------------------------------------------------------------------------ request


def read_body(raw: bytes, content_encoding: str) -> dict[str, Any]:
    """The JSON object of a request body (gzip allowed), within the batch size limit."""
    if "gzip" in (content_encoding or "").lower():
        raw = _gunzip(raw)
    if len(raw) > MAX_BATCH_BYTES:
        raise RequestRejected(400, "", "batch_too_large", f"A request may carry at most {MAX_BATCH_BYTES // 1024} KB.")
    try:
        body = loads(raw or b"null")  # orjson: a 500-event batch in ~0.6 ms, json.loads ~1.1 ms
    except ValueError:  # UnicodeDecodeError is one
        raise RequestRejected(400, "", "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RequestRejected(400, "", "invalid_body", "The body must be a JSON object.")
    return body


def _gunzip(raw: bytes) -> bytes:
    # Inflate at most one byte past the limit, so a small bomb cannot take the memory.
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(MAX_BATCH_BYTES + 1)
    except (OSError, EOFError, zlib.error):
        raise RequestRejected(400, "", "invalid_gzip", "The body is not valid gzip.") from None
    return data


def write_key_from(body: dict, authorization: str) -> str:
    """Segment SDKs send the write key as HTTP Basic user; others in the body or as Bearer."""
    if isinstance(body.get("writeKey"), str) and body["writeKey"]:
        return body["writeKey"]
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    if scheme.lower() == "bearer":
        return value.strip()
    return ""


# ------------------------------------------------------------------------------ items


@dataclass
class Parsed:
    messages: list[Message]
    problems: list[ItemProblem]


def parse_batch(body: dict, *, now: datetime, single_type: str | None = None) -> Parsed:
    """Items of /v1/batch (or the one item of /v1/track etc.) as messages and problems."""
    if single_type is None:
        items = body.get("batch")
        if not isinstance(items, list):
            raise RequestRejected(400, "batch", "required", "Send the events in a `batch` list.")
        base_path = "batch"
    else:
        items, base_path = [dict(body, type=single_type)], ""
    parsed = Parsed([], [])
    for index, item in enumerate(items):
        path = f"{base_path}[{index}]" if base_path else ""
        try:
            parsed.messages.append(_message(item, index, path, now))
        except _ItemError as error:
            parsed.problems.append(ItemProblem(index, f"{path}.{error.field}".strip("."), error.code, error.message))
    return parsed


class _ItemError(Exception):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def _message(item: Any, index: int, path: str, now: datetime) -> Message:
    if not isinstance(item, dict):
        raise _ItemError("", "invalid_item", "Each item must be a JSON object.")
    hostile = value_problem(item)  # first: a deep item must not reach the size measure
    if hostile:
        raise _ItemError(hostile.path, hostile.code, hostile.message)
    if _too_large(item):
        raise _ItemError("", "event_too_large", f"An item may be at most {MAX_EVENT_BYTES // 1024} KB.")
    kind = item.get("type")
    if kind not in TYPES:
        raise _ItemError("type", "invalid_type", f"`type` must be one of {', '.join(TYPES)}.")
    message = Message(
        type=kind, timestamp=_timestamp(item, now), index=index, path=path,
        message_id=_string(item, "messageId", 255), user_id=_id(item, "userId"), anonymous_id=_id(item, "anonymousId"),
    )
    if kind == "track":
        message.event = _string(item, "event", 200)
        if not message.event:
            raise _ItemError("event", "required", "A track call needs an `event` name.")
        message.properties = _object(item, "properties")
    elif kind in ("page", "screen"):
        message.properties = _object(item, "properties")
        for key in ("name", "category"):
            if isinstance(item.get(key), str):
                message.properties.setdefault(key, item[key])
    elif kind == "identify":
        traits = _object(item, "traits") or _object(_object(item, "context"), "traits")
        message.traits = segment_traits(traits)
    elif kind == "group":
        message.traits = group_traits(_object(item, "traits"), _id(item, "groupId"))
    elif kind == "alias":
        message.previous_id = _id(item, "previousId")
        if not message.previous_id or not message.user_id:
            raise _ItemError("previousId", "required", "An alias call needs `previousId` and `userId`.")
    return message


def _too_large(item: dict) -> bool:
    """Longer than MAX_EVENT_BYTES as compact json.dumps output, the limit's measure."""
    try:
        size = len(orjson.dumps(item))  # ~0.3 µs an item; json.dumps ~6 µs, run per item
    except TypeError:  # integers beyond 64 bits, deep nesting: only the json module writes those
        return len(json.dumps(item, separators=(",", ":"))) > MAX_EVENT_BYTES
    # TRICKY: orjson writes UTF-8 where json.dumps writes \uXXXX escapes, so json.dumps can
    # be up to 3x longer (a 2-byte character becomes 6) but never more: only an item that
    # might cross the limit pays for the exact measure.
    if size * 3 <= MAX_EVENT_BYTES:
        return False
    return len(json.dumps(item, separators=(",", ":"))) > MAX_EVENT_BYTES


def _timestamp(item: dict, now: datetime) -> datetime:
    """Segment's rule: `timestamp` if given; else correct `originalTimestamp` for the
    device's clock skew using `sentAt`; else the time it was received."""
    stamp = item.get("timestamp")
    if stamp is not None and item.get("originalTimestamp") is None and item.get("sentAt") is None:
        return _moment(stamp, "timestamp")  # the usual item (server-side SDKs): one field
    parsed = {key: _moment(item[key], key)  # each parsed once: this runs per item
              for key in ("timestamp", "originalTimestamp", "sentAt") if item.get(key) is not None}
    if parsed.get("timestamp"):
        return parsed["timestamp"]
    original, sent = parsed.get("originalTimestamp"), parsed.get("sentAt")
    if original and sent:
        corrected = now - (sent - original)
        if not in_range(corrected):
            raise _ItemError("sentAt", Code.OUT_OF_RANGE, f"Corrected for sentAt, the time is not {MOMENT_RANGE}.")
        return corrected
    return original or now


def _moment(value: Any, key: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise _ItemError(key, "invalid_timestamp", "Use an ISO 8601 timestamp.")
    if not in_range(parsed):
        raise _ItemError(key, Code.OUT_OF_RANGE, f"Times must be {MOMENT_RANGE}.")
    return parsed


def _id(item: dict, key: str) -> str | None:
    value = item.get(key)
    if type(value) is str and 0 < len(value) <= 255:  # the usual id, checked in one test
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _ItemError(key, "invalid_id", f"`{key}` must be a string.")
    value = str(value)
    if len(value) > 255:
        raise _ItemError(key, "too_long", f"`{key}` may be at most 255 characters.")
    return value


def _string(item: dict, key: str, limit: int) -> str | None:
    value = item.get(key)
    if type(value) is str and len(value) <= limit:  # the usual value, checked in one test
        return value
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ItemError(key, "invalid_value", f"`{key}` must be a string.")
    if len(value) > limit:
        raise _ItemError(key, "too_long", f"`{key}` may be at most {limit} characters.")
    return value


def _object(item: dict, key: str) -> dict:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _ItemError(key, "invalid_value", f"`{key}` must be an object.")
    return value


# ------------------------------------------------------------------------------ traits

# Segment's reserved identify traits → Strata's built-in traits.
_RESERVED = {"email": "email", "name": "name", "gender": "gender", "title": "occupation",
             "birthday": "birth_date", "createdAt": "signed_up_at", "created_at": "signed_up_at", "plan": "plan"}


def segment_traits(traits: dict) -> dict:
    out = {}
    for key, value in traits.items():
        if key in _RESERVED:
            out[_RESERVED[key]] = value
        elif key == "address" and isinstance(value, dict):
            for source, target in (("country", "country"), ("state", "region"), ("city", "city")):
                if source in value:
                    out[target] = value[source]
            rest = {k: v for k, v in value.items() if k not in ("country", "state", "city")}
            if rest:
                out["address"] = rest
        elif key == "company" and isinstance(value, dict):
            out.update(group_traits(value, None))
        elif key in ("firstName", "lastName"):
            continue
        else:
            out[key] = value
    if "name" not in out and (traits.get("firstName") or traits.get("lastName")):
        out["name"] = " ".join(str(traits[k]) for k in ("firstName", "lastName") if traits.get(k))
    return out


def group_traits(traits: dict, group_id: str | None) -> dict:
    """A group call describes the customer's company: firmographic built-ins, the rest as
    company.* custom traits."""
    mapping = {"name": "company", "industry": "industry", "employees": "company_size",
               "employee_count": "company_size", "annual_revenue": "annual_revenue", "plan": "plan"}
    out: dict[str, Any] = {"company.id": group_id} if group_id else {}
    for key, value in traits.items():
        if key in mapping:
            out[mapping[key]] = value
        elif key != "id":
            out[f"company.{key}"] = value
    return out
