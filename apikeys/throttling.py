"""Rate limits on the REST API per API key (common/ratelimit.py; settings.RATE_LIMITS["api"]).
People in the app (session) are not counted: the limit protects the service from scripts."""

from __future__ import annotations

import time

from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from apikeys.models import ApiKey
from common.errors import Code
from common import ratelimit


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        wait = ratelimit.hit(bucket=f"api:{key.prefix}", limit=ratelimit.configured("api"), now=time.time())
        if wait is not None:
            raise Throttled(wait=wait, detail=f"Too many requests with this API key; retry in {wait} s.",
                            code=Code.RATE_LIMITED)
        return True
