"""Signed, single-use, short-lived tokens that carry a login from the public site to a
tenant subdomain.

TRICKY: browsers refuse a cookie for `.localhost`, so in development the public site and
`acme.localhost` cannot share a session; production may share one through
SESSION_COOKIE_DOMAIN, and the handoff is then merely redundant.
"""

from __future__ import annotations

import secrets

from django.core import signing
from django.core.cache import cache

from tenants.models import Tenant, User

SALT = "strata.tenants.handoff"
MAX_AGE_SECONDS = 60


def handoff_token_create(*, user: User, tenant: Tenant) -> str:
    payload = {"u": user.pk, "t": tenant.pk, "n": secrets.token_urlsafe(16)}
    return signing.dumps(payload, salt=SALT, compress=True)


def handoff_token_redeem(*, token: str, tenant: Tenant) -> User | None:
    """The user the token was made for, if it is fresh, for this tenant and unused."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if payload.get("t") != tenant.pk:
        return None
    # cache.add is atomic in Redis: only the first redemption of a nonce succeeds.
    if not cache.add(f"handoff:{payload['n']}", 1, timeout=MAX_AGE_SECONDS * 2):
        return None
    return User.objects.filter(pk=payload.get("u"), is_active=True).first()
