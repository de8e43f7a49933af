"""A tenant's API keys (secret, scoped) and its tracking write key (public, ingest only)."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        INGEST = "ingest", "Ingest"
        LAUNCH = "launch", "Launch campaigns"
        SETTINGS = "settings", "Change settings"

    name = models.CharField(max_length=100)
    # The visible part (shown in lists, logs and the audit trail) and a SHA-256 of the
    # whole key. The plain key exists only in the response that created it.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices))
    # TRICKY: a reference from a tenant schema to the public users table. No database
    # constraint and DO_NOTHING, so deleting a user (in the public schema, where this table
    # does not exist) never reaches into tenant schemas; a key whose creator is gone is
    # refused at use (api_key_owner_gone).
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                                   null=True, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    is_api_key = True  # how audit and permission checks tell a key from a person

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, *, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdentitySecret(models.Model):
    """Identity verification for what an app asks about one customer (in-app messages):
    the tenant's backend signs the userId with this secret (apikeys.secrets.user_hash) and
    the app sends the signature with it, so a guessable userId and the public write key
    are not enough to read that customer's personalised content. Server-side only; shown to
    those who manage keys. Rotation replaces it."""

    secret = models.CharField(max_length=80, unique=True)
    # True: an unsigned request is refused (401). False: it gets messages without
    # personalisation, and no arm is stored for it.
    required = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.secret[:7]}…"


class PublicKey(models.Model):
    """A key that ships in customers' web pages and apps: it names the workspace, grants
    little, and is rotated (the old one revoked) rather than deleted."""

    key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class WriteKey(PublicKey):
    """Identifies the tenant to tracking SDKs (Segment's `writeKey`). Public by design:
    it ships in browser code and only allows ingest. Rotation revokes the old one."""

    def __str__(self) -> str:
        return self.key


class LookupKey(PublicKey):
    """Identifies the tenant to its own product asking "which segments is this user in?"
    (segments.lookup). Public like the write key — it ships in web pages — and read-only:
    each answer also needs the user's id signed with the identity secret, so the key alone
    reveals nothing about anyone. Rotation revokes the old one."""

    def __str__(self) -> str:
        return f"{self.key[:7]}…"
