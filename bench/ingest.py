"""Events per second through `POST /v1/batch` of a running server, against raw COPY.

Thing: a real gunicorn (`config.wsgi`, sync workers) on 127.0.0.1 with the production
settings (config.settings.production: DEBUG off, no WhiteNoise autorefresh/finders),
serving a fresh bench tenant; 2 workers, one per core here (the Procfile's default is
WEB_CONCURRENCY=3). N pre-built Segment batches of 500 track events (deterministic:
random.Random(seed), a few thousand distinct userIds, unique messageIds) are POSTed by 2
client threads (`requests.Session` each; Host `<slug>.localhost`, write key as HTTP Basic
user); `--workers` / `--clients` change both counts. Every answer must be 200 with
accepted == 500, otherwise the benchmark stops with the answer and gunicorn's last log
lines. The HTTP path does everything a real batch does: parse, write-key check, the
inbox (customers/ingest/inbox.py), and — in the merger, a Celery worker on the `freshness`
queue started beside gunicorn — resolve identities (creating the customers on first
sight), the message ids then the new events (customers_eventmessage), last_seen_at, the event registry. A round's
time runs until the merger has stored its last event (`stored_lag_s`: the longest wait
after the last answer). A few one-event warm-up requests go first, not counted.

Baseline, in the same process on its own psycopg connection: the same events, mapped to the
customer ids the HTTP path created and given new message ids (suffix `-copy`), are COPYed
straight into the same table of the same schema, one `COPY customers_event (…) FROM STDIN`
per 500-event batch (each its own transaction), sequentially. Rows are built before the
clock starts, so this is the database's cost of storing the rows and nothing else. The two
alternate in `--rounds` rounds (default 4, see ROUNDS): a quarter of the batches over HTTP,
then their raw COPY, and so on.

ratio = HTTP events/s / raw COPY events/s — higher is better (target ≥ 0.8, issue 25), unlike the
other benchmarks' ratios. Also: p50/p95/max request latency, and where the CPU went during
the HTTP phase (`client_cpu_s`: this process; `server_cpu_s`: the gunicorn workers and the merger;
`postgres_cpu_s`: their and the merger's backends, found by PGAPPNAME; `machine_cpu_s`: every core's busy
time, other work included) and `copy_postgres_cpu_s`, the raw COPY backend's CPU; per event
as `http_cpu_us_per_event` and `copy_cpu_us_per_event` (least disturbed by other work).

The 1M-row customer CSV import the issue also asks for is timed by bench/csv_import.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import Result

REPO = Path(__file__).resolve().parent.parent
BATCH_EVENTS = 500
DEFAULT_BATCHES, QUICK_BATCHES = 200, 20
DEFAULT_USERS = 5_000
SEED = 20261123
WORKERS = 2  # gunicorn sync workers (the machine has 2 cores)
CLIENTS = 2  # client threads
# The batches are sent in rounds, each followed by the raw COPY of its events, so both sides
# are timed under the same background load of the shared machine (one long phase each let a
# burst of other work land on one side only). --rounds 1 is the earlier measure: all HTTP,
# then all COPY. Either way the raw COPY alone ranged 26k–43k events/s between runs here.
ROUNDS = 4
START_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = (5, 120)  # connect, read
STOP_TIMEOUT_S = 30
WARMUP_REQUESTS = 4
EVENT_COLUMNS = ("customer_id", "name", "timestamp", "properties", "message_id", "received_at", "source")

EVENT_NAMES = ("product_viewed", "added_to_cart", "checkout_started", "order_completed",
               "feature_used", "signed_in", "report_exported", "invite_sent")
PLANS = ("free", "starter", "pro", "enterprise")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--batches", type=int, default=None,
        help=f"batches of {BATCH_EVENTS} events to send (default {DEFAULT_BATCHES}, --quick {QUICK_BATCHES})",
    )
    group.add_argument(
        "--users", type=int, default=DEFAULT_USERS,
        help=f"distinct userIds across the events (default {DEFAULT_USERS:_})",
    )
    group.add_argument("--workers", type=int, default=WORKERS, help=f"gunicorn workers (default {WORKERS})")
    group.add_argument("--clients", type=int, default=CLIENTS,
                       help=f"client threads POSTing concurrently (default {CLIENTS})")
    group.add_argument("--rounds", type=int, default=ROUNDS,
                       help=f"HTTP/raw-COPY alternations (default {ROUNDS}; 1: all HTTP, then all COPY)")


# ------------------------------------------------------------------------------ data


def build_batches(count: int, users: int, seed: int = SEED, size: int = BATCH_EVENTS) -> list[list[dict]]:
    """`count` lists of `size` Segment track items, the same for the same arguments."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    batches = []
    for b in range(count):
        items = []
        for i in range(size):
            n = b * size + i
            stamp = start + timedelta(seconds=n * 7 + rng.randrange(7), milliseconds=rng.randrange(1000))
            items.append({
                "type": "track",
                "userId": f"user-{rng.randrange(users):06d}",
                "event": rng.choice(EVENT_NAMES),
                "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "properties": {
                    "plan": rng.choice(PLANS),
                    "amount": round(rng.uniform(1, 500), 2),
                    "currency": "EUR",
                    "sku": f"SKU-{rng.randrange(2000):04d}",
                },
                "context": {"library": {"name": "analytics-python", "version": "2.3.3"},
                            "ip": f"203.0.113.{rng.randrange(1, 255)}"},
            })
        batches.append(items)
    return batches


# ------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Server:
    """gunicorn on 127.0.0.1:<free port> against the bench database; always stopped. With
    `merger`, also a Celery worker on the `freshness` queue, which stores what the tracking
    requests accept (customers/ingest/inbox.py), as a deployment's freshness worker does."""

    def __init__(self, log: Path, workers: int, *, merger: bool = False) -> None:
        self.port = _free_port()
        self.log = log
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.merger: subprocess.Popen | None = None
        self.wants_merger = merger
        self.application_name = f"bench-ingest-{self.port}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update({
            # Production settings, as a deployment runs them (DEBUG off, no WhiteNoise
            # autorefresh or finders, JSON logs), with what they insist on being given.
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "bench-only-" + self.application_name,
            "BASE_DOMAIN": "localhost",
            "PUBLIC_SCHEME": "http",
            "SESSION_COOKIE_SECURE": "false",
            "DATABASE_URL": os.environ["DATABASE_URL"],  # the runner pointed it at strata_bench
            "REDIS_URL": os.environ["REDIS_URL"],
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
            "PGAPPNAME": self.application_name,  # libpq: tells the server's backends apart
            "TRACKING_MERGE": "queued",
        })
        return env

    def start(self) -> None:
        import requests

        gunicorn = Path(sys.executable).parent / "gunicorn"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(gunicorn), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--access-logfile", "/dev/null"],
                cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if self.wants_merger:
            self._start_merger()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{_tail(self.log)}")
            try:
                answer = requests.get(f"{self.base}/healthz", headers={"Host": "localhost"}, timeout=2)
                if answer.status_code in (200, 503):  # 503: no Celery worker, still serving
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"gunicorn did not answer /healthz within {START_TIMEOUT_S} s:\n{_tail(self.log)}")

    def _start_merger(self) -> None:
        celery = Path(sys.executable).parent / "celery"
        with open(self.log.with_name("merger.log"), "wb") as out:
            self.merger = subprocess.Popen(
                [str(celery), "-A", "config", "worker", "--loglevel=WARNING", "--queues=freshness", "--pool=solo",
                 "--without-gossip", "--without-mingle", "--without-heartbeat", f"--hostname={self.application_name}@%h"],
                cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def processes(self) -> list[int]:
        """The gunicorn workers' and the merger's pids (what serves the load)."""
        from bench.support import children_of

        return children_of(self.process.pid) + ([self.merger.pid] if self.merger else [])

    def wait_stored(self, schema: str, timeout_s: float = 600) -> float:
        """Seconds until the workspace's inbox is empty (every accepted item merged)."""
        import psycopg

        from bench.support import database_url, quote_ident

        started = time.monotonic()
        with psycopg.connect(database_url(), autocommit=True) as conn:
            while conn.execute(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(schema)}.customers_inboxbatch "
                               "WHERE failed_at IS NULL)").fetchone()[0]:
                if self.merger is not None and self.merger.poll() is not None:
                    raise RuntimeError(f"the merger exited:\n{_tail(self.log.with_name('merger.log'))}")
                if time.monotonic() - started > timeout_s:
                    raise RuntimeError(f"the inbox was not merged within {timeout_s} s")
                time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        for process in (self.process, self.merger):
            if process is None or process.poll() is not None:
                continue
            process.terminate()  # graceful: the master stops its workers
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)  # its own process group (start_new_session)
                process.wait(timeout=STOP_TIMEOUT_S)


# ------------------------------------------------------------------------------ HTTP


def _post_all(server: Server, host: str, write_key: str, bodies: list[bytes], expected: list[int],
              clients: int) -> tuple[float, list[float]]:
    """POST every body from `clients` threads; (wall seconds, per-request seconds). Fails on
    the first answer that is not 200 with every event accepted."""
    import requests

    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()
    url = f"{server.base}/v1/batch"
    headers = {"Host": host, "Content-Type": "application/json"}

    def send(index: int) -> float:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = (write_key, "")
            with lock:
                sessions.append(session)
        started = time.perf_counter()
        answer = session.post(url, data=bodies[index], headers=headers, timeout=REQUEST_TIMEOUT_S)
        seconds = time.perf_counter() - started
        try:
            payload = answer.json()
        except ValueError:
            payload = {"body": answer.text[:500]}
        if answer.status_code != 200 or payload.get("accepted") != expected[index] or payload.get("rejected"):
            raise RuntimeError(f"batch {index}: HTTP {answer.status_code}, expected accepted={expected[index]}: "
                               f"{json.dumps(payload)[:1000]}")
        return seconds

    executor = ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-client")
    try:
        started = time.perf_counter()
        futures = [executor.submit(send, i) for i in range(len(bodies))]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        wall = time.perf_counter() - started
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()
        assert not pending
        return wall, [future.result() for future in futures]
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        for session in sessions:
            session.close()


# ------------------------------------------------------------------------------ COPY


def _count_events(schema: str) -> int:
    import psycopg

    from bench.support import database_url, quote_ident

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        (count,) = conn.execute("SELECT count(*) FROM customers_event").fetchone()
    return count


def _copy_rows(schema: str, batches: list[list[dict]]) -> list[list[tuple]]:
    """The same events as COPY rows: customer ids the HTTP path created, new message ids."""
    import psycopg

    from bench.support import database_url, quote_ident

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        ids = dict(conn.execute(
            "SELECT value, customer_id FROM customers_customeridentity WHERE kind = 'user_id'").fetchall())
    now = datetime.now(UTC)
    missing = {item["userId"] for items in batches for item in items} - ids.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} userIds have no customer after the HTTP phase, e.g. {sorted(missing)[:3]}")
    return [
        [(ids[item["userId"]], item["event"], item["timestamp"], json.dumps(item["properties"]),
          item["messageId"] + "-copy", now, "tracking") for item in items]
        for items in batches
    ]


def _raw_copy(schema: str, row_batches: list[list[tuple]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the PostgreSQL backend doing the COPY)."""
    import psycopg

    from bench.support import database_url, process_cpu_s, quote_ident

    statement = f"COPY customers_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        with conn.cursor() as cursor:
            backend_cpu = process_cpu_s(backend)
            started = time.perf_counter()
            for rows in row_batches:  # one COPY (and transaction) per batch, like one request
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
            return time.perf_counter() - started, process_cpu_s(backend) - backend_cpu


# ------------------------------------------------------------------------------ run


def _http_round(server: Server, schema: str, host: str, write_key: str, bodies: list[bytes], clients: int,
                totals: dict[str, float]) -> list[float]:
    """POST one round's bodies and wait until the merger has stored them; add its wall time
    (sent and stored) and where the CPU went (this process's client threads, the gunicorn
    workers and the merger, their PostgreSQL backends, the machine as a whole) to `totals`;
    return the request latencies."""
    from bench.support import backend_pids, machine_busy_s, process_cpu_s

    workers = server.processes()
    backends = backend_pids(server.application_name)  # the workers connected during the warm-up
    before = {pid: process_cpu_s(pid) for pid in workers + backends}
    client_before, machine_before = time.process_time(), machine_busy_s()
    wall, latencies = _post_all(server, host, write_key, bodies, [BATCH_EVENTS] * len(bodies), clients)
    lag = server.wait_stored(schema)
    totals["http_s"] += wall + lag
    totals["stored_lag_s"] = max(totals["stored_lag_s"], lag)
    totals["client_cpu_s"] += time.process_time() - client_before
    totals["machine_cpu_s"] += machine_busy_s() - machine_before
    totals["server_cpu_s"] += sum(process_cpu_s(pid) - before[pid] for pid in workers)
    totals["postgres_cpu_s"] += sum(process_cpu_s(pid) - before[pid] for pid in backends)
    return latencies


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from django_tenants.utils import schema_context

    from apikeys.selectors import write_key_current
    from bench.support import admin_email_for, drop_tenants, new_run_id, percentile
    from tenants.services import tenant_create

    count = args.batches or (QUICK_BATCHES if args.quick else DEFAULT_BATCHES)
    if min(count, args.users, args.workers, args.clients, args.rounds) < 1:
        raise SystemExit("bench: --batches, --users, --workers, --clients and --rounds must be at least 1")
    rounds = min(args.rounds, count)
    per_round = -(-count // rounds)  # ceiling: every batch in some round

    batches = build_batches(count, args.users)
    events = count * BATCH_EVENTS
    bodies = [json.dumps({"batch": items}, separators=(",", ":")).encode() for items in batches]
    warmup = [json.dumps({"batch": [{"type": "track", "userId": f"warmup-{i}", "event": "warmup",
                                     "messageId": f"warmup-{i}"}]}).encode() for i in range(WARMUP_REQUESTS)]
    slug = f"bench-{new_run_id()}-ingest"
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        server = Server(Path(tmp) / "gunicorn.log", args.workers, merger=True)
        try:
            connection.set_schema_to_public()
            tenant = tenant_create(slug=slug, name=f"Bench ingest {slug}", admin_email=admin_email_for(slug))
            schema, host = tenant.schema_name, tenant.get_primary_domain().domain
            with schema_context(schema):
                write_key = write_key_current().key
            connection.set_schema_to_public()

            server.start()
            _post_all(server, host, write_key, warmup, [1] * len(warmup), args.clients)
            server.wait_stored(schema)
            print(f"ingest: POSTing {count} batches × {BATCH_EVENTS} events to {server.base} "
                  f"({args.workers} gunicorn workers, {args.clients} client threads) in {rounds} round(s), "
                  "each followed by the raw COPY of its events…", file=sys.stderr, flush=True)
            totals: dict[str, float] = defaultdict(float)
            latencies: list[float] = []
            customers: set[int] = set()
            for first in range(0, count, per_round):
                part = slice(first, first + per_round)
                latencies += _http_round(server, schema, host, write_key, bodies[part], args.clients, totals)
                row_batches = _copy_rows(schema, batches[part])  # customer ids the HTTP round created
                customers |= {row[0] for rows in row_batches for row in rows}
                copy_s, copy_cpu_s = _raw_copy(schema, row_batches)
                totals["copy_s"] += copy_s
                totals["copy_postgres_cpu_s"] += copy_cpu_s
            stored = _count_events(schema) - len(warmup)
            if stored != 2 * events:
                raise RuntimeError(f"HTTP and raw COPY stored {stored} events, expected {events} each")
            server.stop()
            if server.process.returncode not in (0, -15):
                print(f"ingest: gunicorn exited with {server.process.returncode}:\n{_tail(server.log)}",
                      file=sys.stderr)
        except BaseException:
            log = _tail(server.log, 80)
            if log:
                print(f"ingest: the last lines gunicorn logged:\n{log}", file=sys.stderr, flush=True)
            raise
        finally:
            server.stop()
            drop_tenants([slug])

    http_s, copy_s = totals["http_s"], totals["copy_s"]
    http_rate, copy_rate = events / http_s, events / copy_s
    latencies_ms = [s * 1000 for s in latencies]
    return [
        Result(
            name="ingest",
            ratio=http_rate / copy_rate,
            measurements={
                "http_events_per_s": http_rate,
                "copy_events_per_s": copy_rate,
                "p50_ms": percentile(latencies_ms, 50),
                "p95_ms": percentile(latencies_ms, 95),
                "batches": count,
                "events": events,
                "max_ms": max(latencies_ms),
                "http_s": http_s,
                "copy_s": copy_s,
                "customers": len(customers),
                "stored_lag_s": totals["stored_lag_s"],
                # CPU seconds during the HTTP phase (2 cores give 2 s per wall second) and of
                # the backend doing the raw COPY.
                "client_cpu_s": totals["client_cpu_s"],
                "server_cpu_s": totals["server_cpu_s"],
                "postgres_cpu_s": totals["postgres_cpu_s"],
                "machine_cpu_s": totals["machine_cpu_s"],
                "copy_postgres_cpu_s": totals["copy_postgres_cpu_s"],
                # CPU per event, the figure the machine's other work disturbs least.
                "http_cpu_us_per_event": (totals["client_cpu_s"] + totals["server_cpu_s"]
                                          + totals["postgres_cpu_s"]) / events * 1e6,
                "copy_cpu_us_per_event": totals["copy_postgres_cpu_s"] / events * 1e6,
                "workers": args.workers,
                "clients": args.clients,
                "rounds": rounds,
            },
            ratio_means="HTTP /v1/batch events/s ÷ raw COPY events/s (higher is better, target ≥ 0.8), until stored",
        )
    ]
