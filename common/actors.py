"""Who acts in a tenant: a member (TenantMembership) or an API key on a member's behalf.
Services take one as `actor: Actor`, check it (tenants.permissions.ensure_permitted) and
record it (audit). A protocol, so common and tenants' hand-offs can name it too."""

from __future__ import annotations

from typing import Protocol


class Actor(Protocol):
    tenant_id: int

    def has(self, permission: str) -> bool: ...
