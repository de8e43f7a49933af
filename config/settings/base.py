"""Settings shared by every environment. Values that differ per host come from the environment."""

import os
from pathlib import Path

import environ
from .schedule import CELERY_BEAT_SCHEDULE, HEARTBEAT_SECONDS, TASK_QUEUES  # noqa: F401
from .stores import (
    cache_config, celery_broker_url, database_config, redis_url_with_db, replica_databases, warehouse_storage,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1"])
# The parent domain tenants live under: <slug>.<BASE_DOMAIN>.
BASE_DOMAIN = env("BASE_DOMAIN", default="localhost")
# The port browsers use, appended to tenant links in development (empty in production).
PUBLIC_PORT = env("PUBLIC_PORT", default="")
PUBLIC_SCHEME = env("PUBLIC_SCHEME", default="http")

# Prometheus (ops/telemetry.py): every process on a host counts into files in this directory
# and /metrics sums them; prometheus_client reads the variable when it is first imported,
# which is after settings. Empty it before the processes start (dev_up does; compose mounts
# a fresh tmpfs). /metrics answers a bearer METRICS_TOKEN, or loopback clients when unset.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(BASE_DIR / ".data" / "metrics"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --------------------------------------------------------------------------- apps
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django.contrib.admin",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_structlog",
    "corsheaders",
    "demo",  # commands only (no models): the generator and the demo tenant
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "ops",
    "audit",
    "apikeys",
    "customers",
    "segments",
    "insights",
    "campaigns",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New tenant schemas are copies of this migrated schema (tenants/template.py); the handlers
# then run in the copy, for what must differ per workspace.
TENANT_TEMPLATE_SCHEMA = "strata_template"
# `migrate_schemas --executor=multiprocessing` (the compose migrate job): schemas migrated by
# this many processes at once (bench/tenants.py).
TENANT_MULTIPROCESSING_MAX_PROCESSES = env.int("TENANT_MIGRATE_PROCESSES", default=2)
WORKSPACE_CREATED_HANDLERS = ["apikeys.services.workspace_keys_issue", "customers.partitions.workspace_months"]
TRACKING_URLCONF = "config.urls_tracking"  # /v1/ on a tenant host (customers.middleware resolves it first)
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
# Unknown hosts get our 404 page instead of silently landing on the public site.
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
DATABASE_ROUTERS = ["common.replica.ReplicaRouter", "django_tenants.routers.TenantSyncRouter"]
# Set search_path once per schema switch, not before every cursor (measured ~2 ms of a
# tracking request); django-tenants resets it after a rollback.
TENANT_LIMIT_SET_CALLS = True
AUTH_USER_MODEL = "tenants.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The largest body any endpoint takes (POST /api/v1/events/): what a chunked body may be.
MAX_CHUNKED_BODY_BYTES = 5 * 1024 * 1024

MIDDLEWARE = [
    "ops.middleware.RequestMetricsMiddleware",
    "common.middleware.chunked_body_middleware",
    "django.middleware.security.SecurityMiddleware",
    "tenants.middleware.TenantRoutingMiddleware",
    # Before the shortcut: browsers call /v1/ from customers' sites (CORS_URLS_REGEX below).
    "corsheaders.middleware.CorsMiddleware",
    # /v1/ tracking (write-key auth, JSON) answers here and skips the rest; see the module.
    "customers.middleware.TrackingShortcutMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "audit.context.AuditContextMiddleware",
    "tenants.middleware.TenantAccessMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenant",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"


# --------------------------------------------------------------------------- hand-offs
# Who hears of customer data (customers/touch.py): after a write commits, each touch handler
# gets the Touch; inside a merge's transaction, each merge handler moves its rows.
CUSTOMER_TOUCH_HANDLERS = ["segments.tasks.customers_touched", "segments.lookup.customers_touched"]
CUSTOMER_MERGE_HANDLERS = ["segments.engine.merges.customers_merged", "campaigns.services.merges.customers_merged",
                           "segments.lookup.customers_merged"]
# Who hears of a change to a team (tenants/services/team_changes.py), inside its transaction:
# tenants is public-schema only, the audit log lives in each tenant's schema.
TEAM_CHANGE_HANDLERS = ["audit.services.team_change_record"]

# --------------------------------------------------------------------------- data stores
DATABASE_URL = env("DATABASE_URL", default="")
REDIS_URL = env("REDIS_URL", default="")
DATABASES = {"default": database_config(DATABASE_URL)} if DATABASE_URL else {}
DATABASES.update(replica_databases() if DATABASES else {})
# Longest replay lag (s) at which the replica still answers; beyond it reads go to the primary.
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=10.0)
CACHES = cache_config(REDIS_URL) if REDIS_URL else {}

# --------------------------------------------------------------------------- auth
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_ADAPTER = "tenants.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
# Lock-out: 5 failed logins for one address in 5 minutes (and 10/min per IP) → refused.
# (Merged into allauth's other default limits; counters live in the Redis cache.)
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/300s/key"}
ACCOUNT_PREVENT_ENUMERATION = True  # login and password reset never reveal who has an account
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Strata] "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Strata"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Sessions live in the public schema; in production one cookie spans the subdomains.
SESSION_COOKIE_DOMAIN = env("SESSION_COOKIE_DOMAIN", default=None)
CSRF_COOKIE_DOMAIN = SESSION_COOKIE_DOMAIN
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS", default=["http://localhost:8000", "http://*.localhost:8000"]
)

# --------------------------------------------------------------------------- i18n, static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


STORAGES["warehouse"] = warehouse_storage(env, BASE_DIR)
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media"))
# Where insights runs spill every customer's features while they fit on samples (unlinked
# files, ~1 GB per million customers); None: the system's temporary directory.
INSIGHTS_SPILL_DIR = env("INSIGHTS_SPILL_DIR", default=None)
# CSV import (customers/imports/): the largest file accepted, and rows per transaction.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=1024**3)
IMPORT_CHUNK_ROWS = env.int("IMPORT_CHUNK_ROWS", default=5000)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Strata <no-reply@strata.localhost>")

# --------------------------------------------------------------------------- REST
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apikeys.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api.permissions.TenantPermission"],
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.JsonBody", "rest_framework.parsers.FormParser", "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.Cursor",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "EXCEPTION_HANDLER": "common.api.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["apikeys.throttling.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Strata API",
    "DESCRIPTION": "Customers, events, segments and campaigns of one workspace. Authenticate with "
                   "`Authorization: Bearer sk_…` (an API key from Settings → API keys).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "common.openapi.document_errors"],
    # Choice sets whose field names (channel, status) other apps use too.
    "ENUM_NAME_OVERRIDES": {
        "CampaignChannelEnum": "campaigns.models.Campaign.Channel",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "PlayStatusEnum": "campaigns.models.Play.Status",
        "SendStatusEnum": "campaigns.models.Send.Status",
        "DeliveryStatusEnum": "campaigns.models.WebhookDelivery.Status",
        "ChangeEnum": "segments.models.MembershipChange.Change",  # webhooks' events: the same set
    },
}

# --------------------------------------------------------------------------- rate limits
# Per key, counted in Redis (common/ratelimit.py): "<count>/<s|m|h>". The lookup key is public
# and serves every visitor of the tenant's product, hence its high allowance.
RATE_LIMITS = {
    "lookup": env("RATE_LIMIT_LOOKUP", default="1000/s"),
    "tracking": env("RATE_LIMIT_TRACKING", default="1000/s"),  # requests per write key, any batch size
    "api": env("RATE_LIMIT_API", default="1200/m"),  # requests per API key to /api/v1/
}

# --------------------------------------------------------------------------- CORS
# The tracking and in-app endpoints (/v1/) are called by SDKs running in customers' web
# pages on any origin (analytics.js, the in-app messages fetch). They authenticate with the
# write key (body, Basic or Bearer), never a cookie, so any origin may call them and no
# credentials are allowed. Everything else (the app, /api/v1/) sends no CORS headers.
from corsheaders.defaults import default_headers  # noqa: E402

CORS_URLS_REGEX = r"^/v1/"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
# content-encoding: gzip bodies (analytics SDKs); x-retry-count: analytics.js numbers its retries;
# x-user-hash: the signed userId of an in-app request (campaigns/in_app.py).
CORS_ALLOW_HEADERS = (*default_headers, "content-encoding", "x-retry-count", "x-user-hash")
CORS_PREFLIGHT_MAX_AGE = 86400

# --------------------------------------------------------------------------- Celery
CELERY_BROKER_URL = celery_broker_url(REDIS_URL) if REDIS_URL else ""
CELERY_RESULT_BACKEND = celery_broker_url(redis_url_with_db(REDIS_URL, 2)) if REDIS_URL else None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TASK_DEFAULT_QUEUE = "strata"  # dispatchers, heartbeats and the rest
CELERY_TASK_ROUTES = {task: {"queue": queue} for queue, tasks in TASK_QUEUES.items() for task in tasks}
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A task must fail loudly rather than run in the public schema (see ops.tasks).
CELERY_TASK_TENANT_CACHE_SECONDS = 30
# Celery's Django fixup closes the database connection around every task unless told to reuse
# it: a worker keeps it as a web process does (ops.tasking closes one past CONN_MAX_AGE or
# broken after each task); the fixup still closes it after this many tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# work_mem of a segment preview's statements (segments/selectors/preview.py): its bitmaps
# over the customers stay exact.
PREVIEW_WORK_MEM = env("PREVIEW_WORK_MEM", default="32MB")
# work_mem of the metrics refresh's scoring statement (four sorts of every customer).
METRICS_WORK_MEM = env("METRICS_WORK_MEM", default="256MB")
# A worker closes its database connection after serving this many tenant schemas: the
# backend's catalog cache grows with every schema it touches (ops.tasking.connection_recycle).
WORKER_SCHEMAS_PER_CONNECTION = env.int("WORKER_SCHEMAS_PER_CONNECTION", default=100)
# A scheduled-evaluation task starts no new evaluation after this long; the rest of its
# tenant's due segments queue behind other tenants' work (segments/due_queue.py).
SEGMENT_DUE_SLICE_SECONDS = env.float("SEGMENT_DUE_SLICE_SECONDS", default=20.0)
# When tracking requests' accepted items are stored (customers/ingest/inbox.py): "queued", by
# a Celery task per tenant after the request; "inline", by the request itself after its commit.
TRACKING_MERGE = env.str("TRACKING_MERGE", default="queued")
# Seconds a queued merge waits when the tenant's last merge found several requests waiting,
# so they are stored together (bench/sdk_load.py); a quiet tenant's merge runs at once.
TRACKING_MERGE_DELAY = env.float("TRACKING_MERGE_DELAY", default=0.25)
# Items a tenant's inbox may hold before tracking requests are refused (503, Retry-After:
# the SDKs retry): bounds the backlog, and the freshness it costs, to what the merge
# stores in ~10 s here (bench/freshness.py).
TRACKING_INBOX_LIMIT = env.int("TRACKING_INBOX_LIMIT", default=100_000)
# Rules read whole days of events from the per-customer daily rollups (customers/rollups.py);
# off, every event condition reads customers_event alone (same members, slower).
SEGMENT_ROLLUPS = env.bool("SEGMENT_ROLLUPS", default=True)

# Campaign email: batches of N, at most R per second per campaign (campaigns.sending).
CAMPAIGN_EMAIL_BATCH_SIZE = env.int("CAMPAIGN_EMAIL_BATCH_SIZE", default=100)
CAMPAIGN_EMAIL_RATE_PER_SECOND = env.float("CAMPAIGN_EMAIL_RATE_PER_SECOND", default=10.0)
# Development only: let webhooks reach 127.0.0.1/::1 (private networks stay refused; campaigns.ssrf).
WEBHOOKS_ALLOW_LOOPBACK = env.bool("WEBHOOKS_ALLOW_LOOPBACK", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / ".data" / "celerybeat-schedule")
)

# --------------------------------------------------------------------------- logging
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
from config.logging import configure_logging  # noqa: E402  (needs the values above)

LOGGING = configure_logging(log_format=LOG_FORMAT, level=LOG_LEVEL)
DJANGO_STRUCTLOG_CELERY_ENABLED = True

# Demo tenant seeded by `make run`.
DEMO_PASSWORD = env("DEMO_PASSWORD", default="strata-demo")
RESERVED_SLUGS = frozenset(
    "www api admin app static media public auth login logout signup account accounts "
    "mail email smtp ftp status healthz help support docs blog dashboard billing "
    "strata root system test staging dev internal cdn assets track v1".split()
)
# Extra hosts that serve the public site (e.g. 127.0.0.1 for health checks).
PUBLIC_EXTRA_DOMAINS = env.list("PUBLIC_EXTRA_DOMAINS", default=["127.0.0.1"])
