"""Behind the production server (gunicorn, as the Procfile runs it) on loopback, against the
test database (issue: hardening, findings 3 and the kill -9 test):

- a batch sent with `Transfer-Encoding: chunked` is read and stored (Django alone reads
  an empty body when there is no Content-Length);
- web workers killed with SIGKILL mid-batch while a client retries each batch with the
  same messageIds: every event is stored exactly once, none lost.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from django.utils import timezone

from apikeys.selectors import write_key_current
from customers.ingest import inbox
from customers.models import Customer, Event
from tests.conftest import host_of

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    """The test database's URL for a server process: TCP, or the embedded server's socket
    directory (`?host=/dir` in its URL, a path in OPTIONS)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or db["OPTIONS"].get("host") or "127.0.0.1", db["PORT"] or 5432
    if host.startswith("/"):
        return f"postgres://{db['USER']}{password}@/{db['NAME']}?host={quote(host)}"
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def gunicorn(committed_db, tmp_path, request):
    """gunicorn with two preloaded workers on a loopback port, on the test database; the
    tracking merge "inline" unless the test's parameter says "queued" (customers/ingest/inbox.py)."""
    port, log = _free_port(), tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": _database_url(),
           "REDIS_URL": settings.REDIS_URL, "STRATA_TEST_TAG": settings.CHECKOUT_TAG,
           "TRACKING_MERGE": getattr(request, "param", "inline")}
    master = subprocess.Popen(
        [str(GUNICORN), "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--preload",
         "--timeout", "30", "--graceful-timeout", "2", "--log-level", "warning"],
        # TRICKY: its log goes to a file: a pipe nobody reads fills up and blocks the master,
        # which then never replaces the workers this test kills.
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 60
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/healthz")
            probe.getresponse().read()
            break
        except OSError:
            if master.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start: " + log.read_text()[-2000:]) from None
            time.sleep(0.2)
    yield master, port
    master.send_signal(signal.SIGTERM)
    try:
        master.wait(timeout=15)
    except subprocess.TimeoutExpired:
        master.kill()


def workers_of(master: subprocess.Popen) -> list[int]:
    """The master's children (its web workers), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{master.pid}\n" in status:
                found.append(int(entry.name))
    return found


def post(port: int, host: str, path: str, body: bytes, *, chunked: bool = False) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        if chunked:
            pieces = (body[i:i + 1000] for i in range(0, len(body), 1000))
            conn.request("POST", path, body=pieces, encode_chunked=True,
                         headers={"Host": host, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        else:
            conn.request("POST", path, body=body, headers={"Host": host, "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_a_chunked_batch_is_read_and_stored(gunicorn, alpha_committed):
    master, port = gunicorn
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    batch = [{"type": "track", "userId": f"{tag}-chunk", "event": "streamed", "messageId": f"{tag}-c{i}",
              "properties": {"pad": "x" * 200}} for i in range(100)]  # ~30 KB in 1 KB chunks
    status, body = post(port, host_of(tenant), "/v1/batch", json.dumps({"writeKey": key, "batch": batch}).encode(),
                        chunked=True)
    assert (status, body.get("accepted")) == (200, 100), body
    status, body = post(port, host_of(tenant), "/api/v1/events/", b"{}", chunked=True)
    assert status == 401  # an API write with a chunked body reaches the API (and its authentication)
    too_big = json.dumps({"writeKey": key, "batch": [{"type": "track", "userId": "x", "event": "e",
                                                      "properties": {"p": "x" * 30_000}}] * 20}).encode()
    status, body = post(port, host_of(tenant), "/v1/batch", too_big, chunked=True)
    assert (status, body["errors"][0]["code"]) == (400, "batch_too_large")
    with schema_context(tenant.schema_name):
        assert Event.objects.filter(message_id__startswith=f"{tag}-c").count() == 100


@pytest.mark.parametrize("gunicorn", ["inline", "queued"], indirect=True)
def test_workers_killed_mid_batch_lose_and_duplicate_nothing(gunicorn, alpha_committed):
    """SIGKILL a web worker ten times while a client sends batches of 40 events (at least
    30, and until the ten kills are done), retrying each (same messageIds) until it is
    answered: every event stored once, 20 customers, each once. Queued: what the answered
    requests left in the inbox is merged afterwards (as the merge task would)."""
    master, port = gunicorn
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    host, done, kills, retries = host_of(tenant), threading.Event(), [], []

    def killer():
        # A fresh worker forks from the preloaded master and answers at once; kills come
        # every 0.3-0.9 s so batches get answered between them. Ten kills, then it ends.
        rng = random.Random(7)
        while not done.is_set() and len(kills) < 10:
            time.sleep(rng.uniform(0.3, 0.9))
            pids = workers_of(master)
            if pids and not done.is_set():
                victim = rng.choice(pids)
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                except ProcessLookupError:
                    pass

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    sent = 0
    try:
        for number in range(2000):
            if number >= 30 and (len(kills) >= 10 or not thread.is_alive()):
                break
            batch = [{"type": "track", "userId": f"{tag}-u{i % 20}", "event": "killed_mid_batch",
                      "messageId": f"{tag}-b{number}-{i}", "properties": {"batch": number}} for i in range(40)]
            body = json.dumps({"writeKey": key, "batch": batch}).encode()
            for attempt in range(200):
                try:
                    status, answer = post(port, host, "/v1/batch", body)
                except (OSError, http.client.HTTPException):
                    status = None
                if status == 200:
                    assert answer["accepted"] == 40, answer
                    sent += 1
                    break
                retries.append(number)
                time.sleep(0.05)
            else:
                pytest.fail(f"batch {number} was never answered")
    finally:
        done.set()
        thread.join(timeout=5)
    assert len(kills) >= 5, "the killer never got to a worker"
    assert retries, "no batch was interrupted: the test did not test anything"
    with schema_context(tenant.schema_name):
        inbox.merge(clock=timezone.now)
        ids = list(Event.objects.filter(message_id__startswith=f"{tag}-b").values_list("message_id", flat=True))
        assert len(ids) == len(set(ids)) == 40 * sent
        assert Customer.objects.filter(external_id__startswith=f"{tag}-u").count() == 20


def test_metrics_sum_every_worker_process(gunicorn, alpha_committed):
    """Events stored by two gunicorn workers (separate processes) are counted once each in
    /metrics, whichever process answers the scrape: the multiprocess files are shared."""
    from tests.ops.test_metrics import samples, value

    master, port = gunicorn
    tenant, tag = alpha_committed
    with schema_context(tenant.schema_name):
        key = write_key_current().key

    def accepted() -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics", headers={"Host": "localhost"})
        text = conn.getresponse().read().decode()
        conn.close()
        return value(samples(text), "strata_ingest_events_total", source="tracking", tenant=tenant.schema_name,
                     outcome="accepted")

    def accepted_here() -> float:  # this test's own process reads the same files
        from django.test import Client

        return value(samples(Client(HTTP_HOST="localhost").get("/metrics").content.decode()),
                     "strata_ingest_events_total", source="tracking", tenant=tenant.schema_name, outcome="accepted")

    before, before_here = accepted(), accepted_here()
    for i in range(20):  # separate connections: both workers take some
        batch = [{"type": "track", "userId": f"{tag}-m", "event": "scraped", "messageId": f"{tag}-s{i}"}]
        assert post(port, host_of(tenant), "/v1/batch", json.dumps({"writeKey": key, "batch": batch}).encode())[0] == 200
    assert accepted() - before == 20
    assert accepted_here() - before_here == 20
    assert len(workers_of(master)) == 2
