"""Production: every value comes from the environment; nothing falls back to a dev server."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")  # no default: refuse to start without one
DATABASE_URL = env("DATABASE_URL")
REDIS_URL = env("REDIS_URL")
from .stores import cache_config, celery_broker_url, database_config, redis_url_with_db, replica_databases  # noqa: E402

DATABASES = {"default": database_config(DATABASE_URL), **replica_databases()}
CACHES = cache_config(REDIS_URL)
CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = celery_broker_url(redis_url_with_db(REDIS_URL, 2))
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
BASE_DOMAIN = env("BASE_DOMAIN")
PUBLIC_SCHEME = env("PUBLIC_SCHEME", default="https")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)  # usually done by the proxy
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # the UI reads the token from a <meta> tag, not the cookie
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
LOG_FORMAT = "json"
