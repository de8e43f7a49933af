"""The membership lookup on the tenant host (/v1/profiles/…; segments.lookup), for the
tenant's own product: which segments a user is in, or whether they are in one.

Authenticated by the workspace's public lookup key (`Authorization: Bearer lk_…`), with the
user's id signed by the tenant's backend (`X-User-Hash` or `?userHash=`: hex HMAC-SHA256 of
the id with the identity secret) — the key ships in web pages, so the signature is what
stops one visitor from asking about another — or by a server API key that reads segments
(no signature: it is a secret). Rate-limited per key; CORS like every /v1/ route; errors
as `{"errors": [{path, code, message}]}`. Plain Django views: no DRF on the hot path.
"""

from __future__ import annotations

import time

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rest_framework import exceptions

from apikeys.authentication import ApiKeyAuthentication
from apikeys.secrets import LOOKUP_KEY_PREFIX
from apikeys.selectors import LookupCredentials
from common.errors import Code, Problem, TenantCode
from common.jsonvalues import text_problem
from common import ratelimit
from ops import telemetry
from segments import lookup
from segments.models import Segment

MAX_ID = 255


class Refused(Exception):
    def __init__(self, status: int, problem: Problem, headers: dict | None = None) -> None:
        super().__init__(problem.message)
        self.status, self.problem, self.headers = status, problem, headers or {}


def _refused(refused: Refused) -> JsonResponse:
    response = JsonResponse({"errors": [refused.problem.as_dict()]}, status=refused.status)
    for name, value in refused.headers.items():
        response[name] = value
    return response


def _identity(request, user_id: str | None) -> tuple[str, str]:
    """("userId" | "anonymousId", the id) from the path or the query."""
    given = [(name, value) for name, value in (("userId", user_id if user_id is not None else request.GET.get("userId")),
                                               ("anonymousId", request.GET.get("anonymousId"))) if value is not None]
    if len(given) != 1:
        raise Refused(400, Problem("userId", Code.REQUIRED, "Name the user: a userId or an anonymousId, one of them."))
    name, value = given[0]
    if not value.strip() or len(value) > MAX_ID:
        raise Refused(400, Problem(name, Code.INVALID_VALUE, f"An id of 1 to {MAX_ID} characters."))
    if found := text_problem(value):
        raise Refused(400, Problem(name, *found))
    return name, value


def _token(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    if not token:
        raise Refused(401, Problem("Authorization", TenantCode.INVALID_LOOKUP_KEY,
                                   "Send Authorization: Bearer <lookup key> (Settings → API keys)."),
                      {"WWW-Authenticate": 'Bearer realm="lookup"'})
    return token


def _server_key(request) -> str:
    """The rate-limit bucket of a server API key that reads segments (a secret: it signs nothing)."""
    try:
        found = ApiKeyAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed as failed:
        code = failed.get_codes() if isinstance(failed.get_codes(), str) else Code.INVALID_TOKEN
        raise Refused(401, Problem("Authorization", code, str(failed.detail))) from None
    if found is None or not found[1].actor.has("segments.view"):
        raise Refused(403, Problem("Authorization", Code.PERMISSION_DENIED, "This API key cannot read segments."))
    return f"sk{found[1].pk}"


def _checked(credentials: LookupCredentials | None) -> LookupCredentials:
    if credentials is None:
        raise Refused(401, Problem("Authorization", TenantCode.INVALID_LOOKUP_KEY, "Unknown lookup key."))
    if credentials.revoked:
        raise Refused(401, Problem("Authorization", TenantCode.REVOKED_LOOKUP_KEY, "This lookup key was rotated."))
    return credentials


def _signed(request, credentials: LookupCredentials, id_name: str, id_value: str) -> None:
    signature = request.GET.get("userHash") or request.META.get("HTTP_X_USER_HASH", "")
    if not credentials.signed(id_value, signature):
        raise Refused(401, Problem("userHash", TenantCode.INVALID_USER_HASH,
                                   f"Send X-User-Hash: the {id_name} signed with the workspace's identity secret "
                                   "(hex HMAC-SHA256), computed by your backend."))


def _within_limit(bucket: str, keys: list[str]) -> dict:
    """Count the request against its key's limit and read the answer's cache keys, in one
    round trip; 429 past the limit."""
    wait, found = ratelimit.hit_reading(bucket=lookup.scoped(f"ratelimit:{bucket}"),
                                        limit=ratelimit.configured("lookup"), now=time.time(), keys=keys)
    if wait is not None:
        raise Refused(429, Problem("", Code.RATE_LIMITED, f"Too many lookups with this key; retry in {wait} s."),
                      {"Retry-After": str(wait)})
    return found


def _profile(request, user_id: str | None):
    """Who asks and about whom, in one statement (a lookup key's credentials and the
    customer); the rate limit and the cached answer in one Redis round trip. A refusal
    (bad key, over the limit, bad signature) is decided before the customer is revealed."""
    token = _token(request)
    id_name, id_value = _identity(request, user_id)
    whom = {"user_id" if id_name == "userId" else "anonymous_id": id_value}
    if token.startswith(LOOKUP_KEY_PREFIX):
        credentials, customer_id = lookup.caller_and_customer(key=token, **whom)
        credentials = _checked(credentials)
        bucket = f"lk{credentials.key_id}"
    else:
        bucket, credentials = _server_key(request), None
        customer_id = lookup.customer_for(**whom)
    found = _within_limit(bucket, lookup.answer_keys(customer_id) if customer_id is not None else [])
    if credentials is not None:
        _signed(request, credentials, id_name, id_value)
    if customer_id is None:
        telemetry.lookup_counted("unknown")
        raise Refused(404, Problem(id_name, Code.UNKNOWN_CUSTOMER, f"No customer with this {id_name}."))
    profile, cached = lookup.profile_of(customer_id, found)
    telemetry.lookup_counted("hit" if cached else "miss")
    return {id_name: id_value}, profile, cached


def _answer(body: dict, cached: bool) -> JsonResponse:
    response = JsonResponse(body)
    response["X-Lookup-Cache"] = "hit" if cached else "miss"
    return response


@never_cache
@require_GET
def profile_segments(request, user_id: str | None = None):
    """The user's current segments (keys, or {key, entered_at} with ?entered_at=true) and
    the workspace's exposed traits."""
    try:
        who, profile, cached = _profile(request, user_id)
    except Refused as refused:
        return _refused(refused)
    with_times = request.GET.get("entered_at", "").lower() in ("1", "true", "yes")
    segments = [{"key": key, "entered_at": at} for key, at in profile.segments] if with_times \
        else [key for key, _ in profile.segments]
    return _answer({**who, "segments": segments, "traits": profile.traits}, cached)


@never_cache
@require_GET
def profile_segment(request, key: str, user_id: str | None = None):
    """Whether the user is in one segment now, and since when."""
    try:
        who, profile, cached = _profile(request, user_id)
        entered = dict(profile.segments).get(key)
        # A key PostgreSQL cannot even compare (NUL, a lone surrogate) names no segment.
        if entered is None and (text_problem(key) or len(key) > 100 or not Segment.objects.filter(key=key)
                                .exclude(status=Segment.Status.ARCHIVED).exists()):
            raise Refused(404, Problem("segment", Code.UNKNOWN_SEGMENT, f"No segment “{key}”."))
    except Refused as refused:
        return _refused(refused)
    return _answer({**who, "segment": key, "member": entered is not None, "entered_at": entered}, cached)
