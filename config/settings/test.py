"""Tests: real PostgreSQL and Redis — the machine's own when reachable, embedded otherwise."""

import atexit
import os
import shutil
import tempfile

# A test run counts its Prometheus metrics and writes its warehouse exports in directories
# of its own; the Celery workers and servers a test starts inherit them by the environment.
for _variable in ("PROMETHEUS_MULTIPROC_DIR", "WAREHOUSE_DIR"):
    if _variable not in os.environ:
        os.environ[_variable] = tempfile.mkdtemp(prefix=f"strata-test-{_variable.lower()}-")
        atexit.register(shutil.rmtree, os.environ[_variable], ignore_errors=True)

from .base import *  # noqa: F401,F403,E402
from .base import BASE_DIR, DATABASES, REDIS_URL  # noqa: E402
from .stores import cache_config, celery_broker_url, database_config, redis_url_with_db  # noqa: E402

if not DATABASES or not REDIS_URL:
    from config import devservers

    urls, _ = devservers.resolve(prefer_system=True)
    DATABASES = {"default": database_config(urls.database_url)}
    REDIS_URL = urls.redis_url

import hashlib  # noqa: E402

# Two checkouts on one machine (a CI clone beside a developer's tree) must not share a
# test database, queue or cache: everything test-scoped carries this checkout's tag.
# STRATA_TEST_TAG separates two runs in one checkout (e.g. two terminals).
CHECKOUT_TAG = os.environ.get("STRATA_TEST_TAG") or hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:8]
for _alias in DATABASES:  # the default and, when configured, the replica
    DATABASES[_alias]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": f"test_strata_{CHECKOUT_TAG}"}
# Separate logical Redis databases so a test run never touches development data.
TEST_REDIS_URL = redis_url_with_db(REDIS_URL, 10)
CACHES = cache_config(REDIS_URL, db=11)
CELERY_BROKER_URL = celery_broker_url(redis_url_with_db(REDIS_URL, 12))
CELERY_RESULT_BACKEND = celery_broker_url(redis_url_with_db(REDIS_URL, 13))
CELERY_TASK_DEFAULT_QUEUE = f"strata-test-{CHECKOUT_TAG}"
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"strata-test-{CHECKOUT_TAG}:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"strata-test-{CHECKOUT_TAG}:"}
CACHES["default"]["KEY_PREFIX"] = CHECKOUT_TAG
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOG_FORMAT = "console"
from config.logging import configure_logging  # noqa: E402

LOGGING = configure_logging(log_format="console", level="WARNING")
PUBLIC_PORT = ""
# Tracking requests store their items before they answer, so a test reads them at once;
# tests of the queued merge set "queued" (customers/ingest/inbox.py).
TRACKING_MERGE = os.environ.get("TRACKING_MERGE", "inline")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "warehouse": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                  "OPTIONS": {"location": os.environ["WAREHOUSE_DIR"]}},
}
# Serve assets straight from static/ (no collectstatic outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
