"""Development: `make run`. Falls back to the embedded servers when no URL is exported."""

from .base import *  # noqa: F401,F403
from .base import CACHES, DATABASES, REDIS_URL, env
from .stores import cache_config, celery_broker_url, database_config, redis_url_with_db

DEBUG = env.bool("DEBUG", default=True)
LOG_FORMAT = env("LOG_FORMAT", default="console")
from config.logging import configure_logging  # noqa: E402

LOGGING = configure_logging(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
PUBLIC_PORT = env("PUBLIC_PORT", default="8000")
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

if not DATABASES or not CACHES:
    # A bare `manage.py …` without `make run`'s exported URLs still works.
    from config import devservers

    urls, _ = devservers.resolve(prefer_system=False)
    DATABASES = {"default": database_config(urls.database_url)}
    REDIS_URL = urls.redis_url
    CACHES = cache_config(REDIS_URL)
    CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
    CELERY_RESULT_BACKEND = celery_broker_url(redis_url_with_db(REDIS_URL, 2))
# Serve assets straight from static/ (no collectstatic outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
