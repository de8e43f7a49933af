"""Tests: real PostgreSQL and Redis — the machine's own when reachable, embedded otherwise."""

from .base import *  # noqa: F401,F403
from .base import DATABASES, REDIS_URL, cache_config, celery_broker_url, database_config, redis_url_with_db

if not DATABASES or not REDIS_URL:
    from config import devservers

    urls, _ = devservers.resolve(prefer_system=True)
    DATABASES = {"default": database_config(urls.database_url)}
    REDIS_URL = urls.redis_url

DATABASES["default"]["CONN_MAX_AGE"] = 0
# Separate logical Redis databases so a test run never touches development data.
TEST_REDIS_URL = redis_url_with_db(REDIS_URL, 10)
CACHES = cache_config(REDIS_URL, db=11)
CELERY_BROKER_URL = celery_broker_url(redis_url_with_db(REDIS_URL, 12))
CELERY_RESULT_BACKEND = celery_broker_url(redis_url_with_db(REDIS_URL, 13))
CELERY_TASK_DEFAULT_QUEUE = "strata-test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOG_FORMAT = "console"
from config.logging import configure_logging  # noqa: E402

LOGGING = configure_logging(log_format="console", level="WARNING")
PUBLIC_PORT = ""
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve assets straight from static/ (no collectstatic outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
