"""Data-store settings from URLs: PostgreSQL (primary and replica), Redis as cache and
Celery broker, and where warehouse exports go. Every environment's settings build theirs
with these."""

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import environ

env = environ.Env()


def database_config(url: str) -> dict:
    config = env.db_url_config(url)
    config["ENGINE"] = "django_tenants.postgresql_backend"
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    return config


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server, another logical database (redis:// or unix:// URL)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def celery_broker_url(url: str) -> str:
    """Celery/kombu spell a Unix-socket Redis `redis+socket:///path?virtual_host=<db>`;
    redis-py (cache, health checks) spells it `unix:///path?db=<db>`."""
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    db = dict(parse_qsl(parts.query)).get("db", "0")
    return f"redis+socket://{parts.path}?virtual_host={db}"


def replica_databases() -> dict:
    """The streaming replica that previews and reports read from (common/replica.py), when
    DATABASE_REPLICA_URL names one. Tests point it at the test database (MIRROR)."""
    url = env("DATABASE_REPLICA_URL", default="")
    if not url:
        return {}
    config = database_config(url)
    # A replica that does not answer costs a read this long once, then is skipped (HEALTH_SECONDS).
    config["OPTIONS"] = {"connect_timeout": env.int("REPLICA_CONNECT_TIMEOUT", default=2), **config.get("OPTIONS", {})}
    return {"replica": {**config, "TEST": {"MIRROR": "default"}}}


def cache_config(url: str, db: int = 1) -> dict:
    return {
        "default": {
            "BACKEND": "common.cache.ReusingRedisCache",
            "LOCATION": redis_url_with_db(url, db),
            # Every cache key carries the tenant schema (rule 6 of DESIGN.md).
            "KEY_FUNCTION": "django_tenants.cache.make_key",
            "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        }
    }


def warehouse_storage(environ, base_dir: Path) -> dict:
    """Where warehouse exports go (segments/warehouse/): a local directory, or any
    S3-compatible bucket through django-storages when WAREHOUSE_S3_BUCKET is set."""
    bucket = environ("WAREHOUSE_S3_BUCKET", default="")
    if not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": environ("WAREHOUSE_DIR", default=str(base_dir / ".data" / "warehouse"))}}
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket,
        "location": environ("WAREHOUSE_S3_PREFIX", default=""),
        "endpoint_url": environ("WAREHOUSE_S3_ENDPOINT_URL", default=None),
        "region_name": environ("WAREHOUSE_S3_REGION", default=None),
        "access_key": environ("WAREHOUSE_S3_ACCESS_KEY_ID", default=None),
        "secret_key": environ("WAREHOUSE_S3_SECRET_ACCESS_KEY", default=None),
        "file_overwrite": True,  # an export's names are deterministic; a rerun replaces its files
        "default_acl": None,
    }}
