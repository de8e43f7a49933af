"""Structured logs, production settings and the error page."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

from tests.conftest import host_of, make_member

ROOT = Path(__file__).resolve().parent.parent


def boom(request):
    raise RuntimeError("db password is hunter2")


def ok(request):
    return HttpResponse("ok")


urlpatterns = [path("boom/", boom), path("ok/", ok)]


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level],
    ))
    logger = logging.getLogger("django_structlog")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_request_logs_are_json_with_request_id_tenant_and_user(tenant, json_log):
    user = make_member(tenant, "logger@alpha.test")
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(user)
    client.get("/")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert finished, lines
    assert finished[-1]["tenant"] == "alpha"
    assert finished[-1]["user_id"] == user.pk
    assert len(finished[-1]["request_id"]) >= 32


@override_settings(ROOT_URLCONF="tests.test_operations", DEBUG=False)
def test_a_crash_shows_the_500_page_and_leaks_nothing(tenant):
    user = make_member(tenant, "crash@alpha.test")
    client = Client(HTTP_HOST=host_of(tenant), raise_request_exception=False)
    client.force_login(user)
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "hunter2" not in body and "Traceback" not in body and "RuntimeError" not in body


def django_check(settings_module: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "BASE_DOMAIN")}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.DATABASES['default']['HOST'])"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=clean | {"DJANGO_SETTINGS_MODULE": settings_module} | env,
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    done = django_check("config.settings.production", {"DATABASE_URL": "postgres://u@db/x", "REDIS_URL": "redis://r:6379/0"})
    assert done.returncode != 0
    assert "SECRET_KEY" in done.stderr


def test_production_settings_read_only_the_environment():
    done = django_check("config.settings.production", {
        "SECRET_KEY": "s" * 50, "DATABASE_URL": "postgres://u:p@db.internal:5432/strata",
        "REDIS_URL": "redis://cache.internal:6379/0", "ALLOWED_HOSTS": ".strata.example",
        "BASE_DOMAIN": "strata.example",
    })
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "db.internal"]
