"""Key material: generation, hashing and parsing. Pure; no database."""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "sk_"
WRITE_KEY_PREFIX = "wk_"


def api_key_new() -> tuple[str, str]:
    """(visible prefix, plain key). The key is 'sk_<prefix>_<secret>' with 240 bits of secret."""
    prefix = secrets.token_hex(5)  # 10 hex chars, unique per tenant (checked by the DB)
    return prefix, f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(30)}"


def api_key_parse(plain: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not plain.startswith(API_KEY_PREFIX) or len(plain) > 200:
        return None
    prefix, sep, secret = plain[len(API_KEY_PREFIX):].partition("_")
    if not sep or len(prefix) != 10 or len(secret) < 30:
        return None
    return prefix


def key_hash(plain: str) -> str:
    # Keys carry 240 random bits, so a fast hash is enough; a slow one (argon2) would
    # only make every API request slower without adding safety.
    return hashlib.sha256(plain.encode()).hexdigest()


def key_matches(plain: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(plain), stored_hash)


def write_key_new() -> str:
    return WRITE_KEY_PREFIX + secrets.token_urlsafe(24)


LOOKUP_KEY_PREFIX = "lk_"


def lookup_key_new() -> str:
    return LOOKUP_KEY_PREFIX + secrets.token_urlsafe(24)


IDENTITY_SECRET_PREFIX = "is_"


def identity_secret_new() -> str:
    return IDENTITY_SECRET_PREFIX + secrets.token_hex(32)


def user_hash(secret: str, user_id: str) -> str:
    """What the tenant's backend computes and its app sends beside the userId: the hex
    HMAC-SHA256 of the userId, keyed with the whole identity secret (prefix included)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def user_hash_matches(secret: str, user_id: str, given: str) -> bool:
    return hmac.compare_digest(user_hash(secret, user_id), (given or "").strip().lower())
