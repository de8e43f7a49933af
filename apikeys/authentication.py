"""`Authorization: Bearer sk_…` for the REST API, looked up in the current tenant's schema
(so tenant A's key does not exist on tenant B's host)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apikeys.models import ApiKey
from apikeys.secrets import api_key_parse, key_matches
from apikeys.services import api_key_touch
from tenants.permissions import SCOPES
from tenants.models import User
from tenants.selectors import membership_for


class ApiKeyActor:
    """An API key acting in a tenant: its scopes, never more than its creator's role now."""

    is_api_key = True

    def __init__(self, key: ApiKey, membership) -> None:
        self.key, self.membership = key, membership
        self.pk, self.prefix, self.user, self.tenant_id = key.pk, key.prefix, membership.user, membership.tenant_id
        scoped = frozenset().union(*(SCOPES[s] for s in key.scopes if s in SCOPES))
        self.permissions = scoped & membership.permissions

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def scopes(self) -> list[str]:
        return list(self.key.scopes)


def _fail(code: str, message: str):
    return exceptions.AuthenticationFailed(message, code=code)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(self.keyword + " "):
            return None
        plain = header[len(self.keyword) + 1:].strip()
        prefix = api_key_parse(plain)
        key = ApiKey.objects.filter(prefix=prefix).first() if prefix else None
        if key is None or not key_matches(plain, key.secret_hash):
            raise _fail("invalid_api_key", "Invalid API key.")
        now = timezone.now()
        if key.revoked_at is not None:
            raise _fail("revoked_api_key", "This API key was revoked.")
        if key.expires_at is not None and key.expires_at <= now:
            raise _fail("expired_api_key", "This API key has expired.")
        owner = User.objects.filter(pk=key.created_by_id).first() if key.created_by_id else None
        membership = membership_for(user=owner, tenant=request.tenant) if owner else None
        if membership is None:
            raise _fail("api_key_owner_gone", "The person who created this key is no longer a member.")
        api_key_touch(key=key, now=now)
        key.actor = ApiKeyActor(key, membership)
        return owner, key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI document names this authentication (drf-spectacular finds it when
    this module is imported, which DRF's settings do)."""

    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API key from Settings → API keys: `Authorization: Bearer sk_…`."}

