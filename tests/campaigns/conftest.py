"""Helpers for campaign tests: customers with or without email consent, a static segment,
and a loopback HTTP server that records what it receives (the only place tests send to)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from customers.feedback import ConsentChangeIn, consents_record
from customers.models import Customer
from segments import engine
from segments.models import Segment
from tests.conftest import session  # noqa: F401  (the pages' tests import it from here)

T0 = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


def people(n: int, *, prefix: str = "c", consent: bool | None = True, **fields) -> list[Customer]:
    made = [Customer.objects.create(external_id=f"{prefix}{i}", email=f"{prefix}{i}@example.com",
                                    name=f"Person{i} Test", **fields) for i in range(n)]
    if consent is not None:
        consents_record(changes=[ConsentChangeIn(customer_id=c.pk, channel="email", granted=consent,
                                                 changed_at=T0.replace(year=2025), source="test") for c in made])
    return made


def static_segment(key: str, members: list[Customer], *, at: datetime = T0) -> Segment:
    segment = Segment.objects.create(key=key, name=key.title(), kind="static")
    if members:
        engine.members_add(segment=segment, customer_ids=[c.pk for c in members], now=at)
    return segment


class Recorder:
    def __init__(self):
        self.requests: list[dict] = []
        self.responses: list[tuple[int, dict]] = []  # consumed in order; then 200

    def next_response(self) -> tuple[int, dict]:
        return self.responses.pop(0) if self.responses else (200, {})


@pytest.fixture
def loopback_server():
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            recorder.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
            status, headers = recorder.next_response()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield recorder
    server.shutdown()
    server.server_close()


def as_json(body: bytes) -> dict:
    return json.loads(body)


# ------------------------------------------------------------------ the pages' clients


@pytest.fixture
def alpha(tenant):
    connection.set_tenant(tenant)
    return tenant



def send(client, method: str, url: str, data=None, *, tenant, **extra):
    """A request, then back into the tenant's schema (the middleware leaves it public)."""
    response = getattr(client, method)(url, data or {}, **extra)
    connection.set_tenant(tenant)
    return response
