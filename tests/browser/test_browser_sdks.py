"""The browser SDKs customers already run, unchanged (issue: hardening, finding 9): the real
@segment/analytics-next and @rudderstack/analytics-js from npm, bundled with the project's
esbuild, run in Chromium on a page of another origin (a loopback server of its own) with
their settings given locally, and send to a workspace's /v1/ — analytics.js with both of
its dispatchers and a retry forced by a 503.
What it sent is read back from the database. Every request the page makes that is not to
loopback is aborted: nothing leaves the machine."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django_tenants.utils import schema_context

from apikeys.selectors import write_key_current
from customers.models import Customer, Event
from tests.browser.sites import served
from tests.conftest import host_of

ROOT = Path(__file__).resolve().parents[2]
SDK = Path(__file__).resolve().parent / "sdk"
ESBUILD = ROOT / "frontend" / "node_modules" / ".bin" / "esbuild"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The customer's site: index.html and the bundled SDK, served from its own port."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text((SDK / "index.html").read_text())
    for source, bundle in (("segment.js", "bundle.js"), ("rudderstack.js", "rudderstack.js")):
        subprocess.run([str(ESBUILD), str(SDK / source), "--bundle", "--format=iife", "--target=es2020",
                        f"--outfile={root / bundle}", "--log-level=error"],
                       check=True, env={"NODE_PATH": str(ROOT / "frontend" / "node_modules"), "PATH": "/usr/bin:/bin"})
    (root / "rudderstack.html").write_text((SDK / "index.html").read_text().replace("bundle.js", "rudderstack.js"))
    with served(root) as base:
        yield base


@pytest.fixture
def tracked(committed_db):
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="alpha")
    prefix = f"js-{uuid.uuid4().hex[:8]}"
    yield tenant, prefix
    with schema_context(tenant.schema_name):
        Customer.objects.filter(external_id__startswith=prefix).delete()


def loopback_only(page) -> list[str]:
    """Abort anything not addressed to loopback; returns the requests seen."""
    seen: list[str] = []

    def guard(route):
        url = route.request.url
        seen.append(f"{route.request.method} {url}")
        host = urlparse(url).hostname or ""
        if host == "127.0.0.1" or host == "localhost" or host.endswith(".localhost"):
            route.fallback()
        else:
            route.abort()

    page.route("**/*", guard)
    return seen


def watched(page, api_host: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Loopback only; what the page requested and logged, and the workspace's answers."""
    seen = loopback_only(page)
    page.on("console", lambda message: seen.append(f"console {message.type}: {message.text}"))
    page.on("pageerror", lambda error: seen.append(f"page error: {error}"))
    answers: list[tuple[str, int]] = []
    page.on("response", lambda response: answers.append((urlparse(response.url).path, response.status))
            if api_host in response.url else None)
    return seen, answers


def stored(tenant, user_id: str) -> set[str]:
    with schema_context(tenant.schema_name):
        return set(Event.objects.filter(customer__external_id=user_id).values_list("name", flat=True))


def wait_until(page, check, timeout: float = 15.0) -> bool:
    """TRICKY: waits through the page, not time.sleep: the route handlers run in this
    thread, so a sleeping test would hold every request of the page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        page.wait_for_timeout(200)
    return check()


@pytest.mark.parametrize("batching", [False, True], ids=["standard", "batching"])
def test_analytics_next_from_another_origin_is_stored(strata_server, site, page, tracked, batching):
    tenant, prefix = tracked
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    api_host = f"{host_of(tenant)}:{strata_server.port}/v1"
    seen, answers = watched(page, host_of(tenant))
    retried: list[dict] = []
    first_track = {"done": False}

    def fail_once(route):
        # One 503 for the first track call: the SDK must retry, numbering the retry.
        if not first_track["done"] and route.request.method == "POST":
            first_track["done"] = True
            route.fulfill(status=503, headers={"Access-Control-Allow-Origin": "*"}, body="{}")
            return
        retried.append(route.request.headers)
        route.fallback()

    target = "**/v1/b" if batching else "**/v1/t"
    page.route(target, fail_once)
    page.goto(f"{site}/index.html")
    user = f"{prefix}-{'b' if batching else 's'}"
    page.evaluate("""([key, host, batching, user]) => {
        window.loadSegment(key, host, batching);
        analytics.identify(user, {plan: "pro", email: user + "@example.test"});
        analytics.track("project_created", {seats: 3});
        analytics.page("Docs", "Install");
    }""", [key, api_host, batching, user])

    paths = {"/v1/b"} if batching else {"/v1/t", "/v1/i", "/v1/p"}
    # The events are stored before the browser has seen every answer: wait for both.
    assert wait_until(page, lambda: {"project_created", "page_viewed"} <= stored(tenant, user)
                      and paths <= {path for path, _ in answers}), seen
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(external_id=user)
        assert customer.plan == "pro"
        assert Event.objects.filter(customer=customer, name="project_created").count() == 1
    assert first_track["done"] and retried, seen
    # Every path the SDK used is routed: the forced 503 aside, every answer is a success.
    assert answers and all(status < 300 or status == 503 for _, status in answers), answers
    assert {path for path, _ in answers} >= paths, answers
    assert any(headers.get("x-retry-count") for headers in retried) or batching, retried


def test_the_rudderstack_sdk_from_another_origin_is_stored(strata_server, site, page, tracked):
    tenant, prefix = tracked
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    seen, answers = watched(page, host_of(tenant))
    page.goto(f"{site}/rudderstack.html")
    user = f"{prefix}-rs"
    page.evaluate("""([key, url, user]) => {
        window.loadRudderStack(key, url);
        rudderanalytics.identify(user, {plan: "team"});
        rudderanalytics.track("report_exported", {format: "csv"});
        rudderanalytics.page("Docs", "Install");
    }""", [key, f"http://{host_of(tenant)}:{strata_server.port}", user])

    # The events are stored before the browser has seen every answer: wait for both.
    answered = lambda: {path for path, status in answers if status == 200}  # noqa: E731
    assert wait_until(page, lambda: {"report_exported", "page_viewed"} <= stored(tenant, user)
                      and {"/v1/identify", "/v1/track", "/v1/page"} <= answered()), seen + answers
    with schema_context(tenant.schema_name):
        assert Customer.objects.get(external_id=user).plan == "team"
    assert {path for path, status in answers if status == 200} == {"/v1/identify", "/v1/track", "/v1/page"}, answers

