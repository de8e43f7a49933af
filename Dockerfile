# syntax=docker/dockerfile:1
# Strata's production image: one image for web (gunicorn), worker and beat (Celery).
# docker-compose.yml runs it with config.settings.production and real PostgreSQL/Redis.

# --------------------------------------------------------------------------- assets
# esbuild + Tailwind, as `make assets` does: frontend/ builds into ../static/dist.
FROM node:20 AS assets
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
# Tailwind scans the templates (templates/ and each app's templates/) for class names,
# so the whole context goes in, not just frontend/.
COPY . /app
RUN npm run build

# --------------------------------------------------------------------------- runtime
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app

# Same uv as the Makefile (UV_VERSION); the lock decides everything else.
RUN pip install uv==0.13.8

# Dependencies first, so a code change does not reinstall them. pyproject has
# `package = false` and a default `dev` group: --no-dev leaves pytest & co. out.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
COPY --from=assets /app/static/dist ./static/dist

# Production settings refuse to load without these; collectstatic touches neither the
# database nor Redis, so placeholders do (set for this command only, not baked in).
RUN SECRET_KEY=collectstatic-build-only \
    DATABASE_URL=postgres://build:build@localhost:5432/build \
    REDIS_URL=redis://localhost:6379/0 \
    ALLOWED_HOSTS=localhost \
    BASE_DOMAIN=localhost \
    python manage.py collectstatic --noinput

# Non-root. The code stays root-owned (read-only to the app); .data is the default
# MEDIA_ROOT / beat-schedule / metrics location and must be writable (collectstatic made
# .data/metrics as root).
RUN groupadd --system --gid 1000 strata \
    && useradd --system --uid 1000 --gid strata --create-home --home-dir /home/strata strata \
    && mkdir -p /app/.data \
    && chown -R strata:strata /app/.data
USER strata

EXPOSE 8000

# slim has no curl. /healthz routes by Host: 127.0.0.1 serves the public site
# (PUBLIC_EXTRA_DOMAINS default) and is in ALLOWED_HOSTS; urlopen raises on a 503.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=8)"]

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
