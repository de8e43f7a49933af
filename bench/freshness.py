"""Event → membership freshness: from `POST /v1/batch` to the open Membership row, through a
real gunicorn server and a real Celery worker.

Set-up: a fresh bench tenant with the generator's data (100k customers / 2M events, 10k /
200k with --quick), the dynamic segments of bench/segments.py (with the rollups saving them
asks for, back-filled, and each evaluated once, as saved segments would have been) and a
probe segment: "did `probe_clicked` at least twice in the last day", an event the generator
never writes, so no customer is in it at the start.
Then a gunicorn (`config.wsgi`, 2 sync workers) and a Celery worker (`celery -A config
worker`, prefork, concurrency 2, as in the Procfile) are started on loopback, with a queue
and Redis key prefix of this run alone (bench/freshness_settings.py); both are stopped at
the end, also on failure.

A probe: one batch of two `probe_clicked` track events for a random generated customer (its
userId), POSTed with the write key; the clock starts before the POST and stops when this
process first sees the customer's open membership of the probe segment (polled every 20 ms
on its own connection). Everything in between is the production path: ingest, the
hand-off after commit (customers.touch → segments.tasks.customers_touched), the `segments.evaluate_touched` task through
Redis, the incremental evaluation of every segment the batch can change, its commit.

Two phases, `--probes` probes each, one after another: idle (the probes alone), and under
load, while a background thread POSTs batches of `--load-events` track events (logins,
page views, purchases of random generated customers, so every event segment is re-checked
for them) every `--load-interval` seconds. `--load-rates 2000,4000,6000` runs one load phase
per rate instead (a result `freshness@<rate>` each), in the same tenant, each once the
previous one's backlog has drained: where p95 crosses a bound is the rate the machine
sustains with that freshness.

ratio = p95 freshness under load ÷ the issue's 10 s target (≤ 1 meets it). A probe not
seen after 120 s counts as 120 s and ends its phase (`timed_out`; `backlog_at_end`: tasks
still queued when the load phase ended — the worker fell behind the load). Also p50/p95/max
of both phases, the POST latency of the probes (the part of the wait spent in the request),
how many background events were accepted and at what rate (a slow answer, or a 503 while
the workspace's inbox is past its limit, which the client waits out as an SDK does —
`load_refusals` —, slows a client's pace below the one asked for; `--load-clients` runs several client threads, each with its
own session and customers drawn by its own seed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import Result

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 10.0
DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 100_000, 2_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
PROBE_EVENT = "probe_clicked"
PROBE_TIMEOUT_S = 120
POLL_S = 0.02
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
WEB_WORKERS = 2  # gunicorn sync workers, as bench/ingest.py (2 cores)
WORKER_CONCURRENCY = 2  # the Procfile's default
LOAD_NAMES = ("login", "page_viewed", "feature_x_used", "purchase")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--probes", type=int, default=None,
                       help="probes per phase (freshness; default 20, --quick 5)")
    group.add_argument("--load-events", type=int, default=200,
                       help="events per background batch under load (freshness; default 200)")
    group.add_argument("--load-interval", type=float, default=1.0,
                       help="seconds between background batches under load (freshness; default 1.0)")
    group.add_argument("--load-clients", type=int, default=1,
                       help="background client threads, each at that pace (freshness; default 1)")
    group.add_argument("--load-rates", default=None,
                       help="comma-separated events/s: one load phase per rate, one after another in the same "
                            "tenant, each after the previous one's backlog drained (freshness; the pace of each "
                            "client is rate ÷ clients, in --load-events batches)")
    group.add_argument("--load-settle", type=float, default=None,
                       help="seconds of load before a phase's probes (freshness; default 5 × the interval, at most "
                            "5 s): a rate the worker only nearly sustains shows its growing backlog after a minute")
    group.add_argument("--fresh-customers", type=int, default=None,
                       help=f"customers of the freshness tenant (default {DEFAULT_CUSTOMERS:_}, --quick "
                            f"{QUICK_CUSTOMERS:_}; events 20 per customer)")


# ------------------------------------------------------------------ processes


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Process:
    """A child in its own process group, logging to a file; `stop` always ends it."""

    def __init__(self, label: str, argv: list[str], env: dict, log: Path) -> None:
        self.label, self.argv, self.env, self.log = label, argv, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.label} exited with {self.process.returncode}:\n{_tail(self.log)}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()  # gunicorn master / celery main process: a graceful stop of their children
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # its own group (start_new_session): only what it started
            process.wait(timeout=STOP_TIMEOUT_S)


def _child_env(run: str) -> dict:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "bench.freshness_settings", "BENCH_FRESHNESS_RUN": run,
                "DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"],
                "DEBUG": "false", "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1"})
    return env


def _server(run: str, port: int, directory: Path) -> Process:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    return Process("gunicorn", [str(gunicorn), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                "--workers", str(WEB_WORKERS), "--access-logfile", "/dev/null"],
                   _child_env(run), directory / "gunicorn.log")


def _queues(run: str) -> list[str]:
    """The run's default queue and every queue of TASK_QUEUES (the checks go to `freshness`);
    the run's key prefix keeps them apart from any other worker's."""
    from django.conf import settings

    return [f"strata-bench-{run}", *settings.TASK_QUEUES]


def _worker(run: str, directory: Path) -> Process:
    celery = Path(sys.executable).parent / "celery"
    return Process("celery worker", [str(celery), "-A", "config", "worker", "--loglevel=WARNING",
                                     f"--queues={','.join(_queues(run))}", f"--concurrency={WORKER_CONCURRENCY}",
                                     "--without-gossip", "--without-mingle", "--without-heartbeat",
                                     f"--hostname=bench-{run}@%h"],
                   _child_env(run), directory / "worker.log")


def _wait_for_server(server: Process, base: str) -> None:
    import requests

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check()
        try:
            if requests.get(f"{base}/healthz", headers={"Host": "localhost"}, timeout=2).status_code in (200, 503):
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"gunicorn did not answer /healthz within {START_TIMEOUT_S} s:\n{_tail(server.log)}")


def _drop_redis_keys(run: str) -> None:
    """The run's queue and result keys (its own prefix) once both processes are gone."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(match=f"strata-bench-{run}*", count=1000))
    for key in ("_kombu.binding.strata-bench-" + run, f"strata-bench-{run}"):
        keys.append(key)
    if keys:
        client.delete(*keys)
    client.close()


# ------------------------------------------------------------------ tenant


def _set_up(schema: str, customers: int, events: int):
    """Generated data, the bench segments with the rollups saving them asks for (back-filled)
    evaluated once, the probe segment; returns the probe segment's id and the generated
    external ids."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from bench.segments import _ensure_rollups, definitions
    from demo.generator import generate
    from segments import engine
    from segments.models import Segment

    with schema_context(schema):
        now = timezone.now()
        generate(customers=customers, events=events, now=now)
        for table in ("customers_customer", "customers_event", "customers_customeridentity"):
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
        segments = [Segment.objects.create(key=f"bench-fresh-{name.replace('_', '-')}", name=name,
                                           definition=definition, definition_version=1)
                    for name, (definition, _sql, _params) in definitions(timezone.now()).items()
                    if "metric" not in json.dumps(definition)]  # metrics are not computed in this tenant
        probe = Segment.objects.create(
            key="bench-fresh-probe", name="Probe", definition_version=1,
            definition={"version": 1, "match": "all", "conditions": [
                {"type": "event", "event": PROBE_EVENT, "count": {"op": "gte", "value": 2}, "window": {"last": "1d"}}]})
        _ensure_rollups(now)  # what saving these rules asks for, back-filled, as in a workspace that saved them
        for segment in (*segments, probe):
            engine.evaluate(segment_id=segment.pk, now=timezone.now(), trigger="manual", clock=timezone.now)
        return probe.pk, _external_ids(), len(segments) + 1


def _external_ids() -> list[tuple[str, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id, id FROM customers_customer WHERE external_id <> '' ORDER BY id")
        return cursor.fetchall()


# ------------------------------------------------------------------ probes and load


class Load(threading.Thread):
    """Background batches of track events for random generated customers, at a fixed pace."""

    def __init__(self, post, customers: list[tuple[str, int]], events: int, interval: float, run: str,
                 client: int = 0) -> None:
        super().__init__(daemon=True)
        self.post, self.customers, self.events, self.interval, self.run_id = post, customers, events, interval, run
        self.client = client
        self.stopping = threading.Event()
        self.sent = self.accepted = 0
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        rng = random.Random(7 + self.client)
        began = time.monotonic()
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                batch = [{"type": "track", "userId": rng.choice(self.customers)[0], "event": rng.choice(LOAD_NAMES),
                          "messageId": f"{self.run_id}-bg{self.client}-{self.sent}-{i}",
                          "properties": {"amount": round(rng.uniform(5, 200), 2)}} for i in range(self.events)]
                self.accepted += self.post(batch)
                self.sent += 1
                self.stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))
        except BaseException as error:  # reported by the main thread
            self.error = error
        self.seconds = time.monotonic() - began


def _member(segment_id: int, customer_id: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM segments_membership WHERE segment_id = %s AND customer_id = %s "
                       "AND exited_at IS NULL", [segment_id, customer_id])
        return cursor.fetchone() is not None


def _probe(post, segment_id: int, customer: tuple[str, int], label: str, processes) -> tuple[float | None, float]:
    """(seconds until the membership is visible, None after PROBE_TIMEOUT_S; seconds of the
    POST itself)."""
    external_id, customer_id = customer
    batch = [{"type": "track", "userId": external_id, "event": PROBE_EVENT, "messageId": f"{label}-{k}"}
             for k in range(2)]
    started = time.perf_counter()
    post(batch)
    posted = time.perf_counter() - started
    while not _member(segment_id, customer_id):
        if time.perf_counter() - started > PROBE_TIMEOUT_S:
            return None, posted
        for process in processes:
            process.check()
        time.sleep(POLL_S)
    return time.perf_counter() - started, posted


def _poster(base: str, host: str, write_key: str):
    import requests

    local = threading.local()

    def post(batch: list[dict]) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        body = json.dumps({"batch": batch})
        while True:
            answer = session.post(f"{base}/v1/batch", data=body, auth=(write_key, ""),
                                  headers={"Host": host, "Content-Type": "application/json"}, timeout=(5, 120))
            if answer.status_code not in (429, 503):
                break
            post.refusals += 1  # as an SDK does: wait as told, send the same batch again
            time.sleep(float(answer.headers.get("Retry-After") or 1))
        if answer.status_code != 200:
            raise RuntimeError(f"freshness: /v1/batch answered {answer.status_code}: {answer.text[:500]}")
        body = answer.json()
        if body.get("accepted") != len(batch):
            raise RuntimeError(f"freshness: /v1/batch accepted {body.get('accepted')} of {len(batch)}: "
                               f"{answer.text[:500]}")
        return len(batch)

    post.refusals = 0
    return post


def _phase(post, segment_id: int, customers, count: int, label: str, processes) -> tuple[list[float], list[float]]:
    """The probes' waits; a probe that timed out counts as PROBE_TIMEOUT_S (a lower bound)
    and ends the phase: the worker is behind, and every later probe would wait longer."""
    waits, posts = [], []
    for index in range(count):
        waited, posted = _probe(post, segment_id, customers.pop(), f"{label}-{index}", processes)
        waits.append(PROBE_TIMEOUT_S if waited is None else waited)
        posts.append(posted)
        if waited is None:
            break
        time.sleep(0.2)  # not back to back: each probe finds the worker as the load leaves it
    return waits, posts


def _drain(run: str, processes, timeout: float = 600) -> None:
    """Wait until the previous phase's work is done: no task queued, nothing in the inbox
    (the next phase starts from an idle worker)."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM customers_inboxbatch WHERE failed_at IS NULL")
            waiting = cursor.fetchone()[0]
        if not waiting and not _backlog(run):
            time.sleep(2)  # the last check's commit
            return
        for process in processes:
            process.check()
        time.sleep(0.5)
    raise RuntimeError(f"freshness: the worker did not catch up within {timeout} s")


def _backlog(run: str) -> int:
    """Messages still waiting in the run's queues (the worker is behind when this grows)."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        return sum(int(client.llen(f"strata-bench-{run}:{queue}")) for queue in _queues(run))
    finally:
        client.close()


# ------------------------------------------------------------------ run


@contextlib.contextmanager
def _tails_on_failure(processes: list[Process]):
    """On a failure, what the server and the worker logged last (their logs go with the run)."""
    try:
        yield
    except Exception:
        for process in processes:
            print(f"freshness: the last lines of {process.label}:\n{_tail(process.log)}", file=sys.stderr, flush=True)
        raise


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from django_tenants.utils import schema_context

    from apikeys.selectors import write_key_current
    from bench.support import admin_email_for, drop_tenants, new_run_id, percentile
    from tenants.services import tenant_create

    customers = getattr(args, "fresh_customers", None) or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    events = customers * (DEFAULT_EVENTS // DEFAULT_CUSTOMERS)
    probes = getattr(args, "probes", None) or (5 if args.quick else 20)
    run_id = new_run_id()
    slug = f"bench-{run_id}-fresh"
    processes: list[Process] = []
    loads: list[Load] = []
    phases: list[tuple] = []
    try:
        connection.set_schema_to_public()
        tenant = tenant_create(slug=slug, name=f"Bench freshness {slug}", admin_email=admin_email_for(slug))
        schema, host = tenant.schema_name, tenant.get_primary_domain().domain
        print(f"freshness: generating {customers:_} customers / {events:_} events in {slug}", flush=True)
        probe_id, known, segment_count = _set_up(schema, customers, events)
        with schema_context(schema):
            write_key = write_key_current().key
        connection.set_schema_to_public()
        with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp, _tails_on_failure(processes):
            port = _free_port()
            processes = [_server(run_id, port, Path(tmp)), _worker(run_id, Path(tmp))]
            for process in processes:
                process.start()
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(processes[0], base)
            post = _poster(base, host, write_key)
            rng = random.Random(6)
            phase_count = len(args.load_rates.split(",")) if args.load_rates else 1
            pool = rng.sample(known, min(len(known), (1 + phase_count) * probes + 2))
            with schema_context(schema):
                # Warm-up (not counted): the worker's first task imports and connects.
                _probe(post, probe_id, pool.pop(), f"{run_id}-warm", processes)
                idle, idle_posts = _phase(post, probe_id, pool, probes, f"{run_id}-idle", processes)
                clients = max(1, args.load_clients)
                paces = ([clients * args.load_events / float(rate) for rate in args.load_rates.split(",")]
                         if args.load_rates else [args.load_interval])
                for number, interval in enumerate(paces):
                    if number:
                        _drain(run_id, processes)
                    loads = [Load(_poster(base, host, write_key), known, args.load_events, interval,
                                  f"{run_id}-p{number}", client) for client in range(clients)]
                    for load in loads:
                        load.start()
                    # The load reaches its pace (and, with --load-settle, runs a while) first.
                    time.sleep(args.load_settle if args.load_settle is not None else min(5.0, 5 * interval))
                    loaded, loaded_posts = _phase(post, probe_id, pool, probes, f"{run_id}-load{number}", processes)
                    backlog = _backlog(run_id)
                    for load in loads:
                        load.stopping.set()
                    for load in loads:
                        load.join(timeout=150)
                        if load.error is not None:
                            raise RuntimeError(f"freshness: background load failed: {load.error}")
                    phases.append((interval, loaded, loaded_posts, backlog, loads, round(os.getloadavg()[0], 2)))
            for process in processes:
                process.stop()
    finally:
        for load in loads:
            load.stopping.set()
        for process in processes:
            process.stop()
        _drop_redis_keys(run_id)
        drop_tenants([slug])

    results = []
    for interval, loaded, loaded_posts, backlog, loads, load_avg in phases:
        p95 = percentile(loaded, 95)
        target_rate = len(loads) * args.load_events / interval
        results.append(Result(
            name="freshness" if len(phases) == 1 else f"freshness@{round(target_rate)}",
            ratio=p95 / TARGET_S,
            measurements={
                "customers": customers, "events": events, "segments": segment_count, "probes": len(idle),
                "load_probes": len(loaded),
                "idle_p50_s": percentile(idle, 50), "idle_p95_s": percentile(idle, 95), "idle_max_s": max(idle),
                "load_p50_s": percentile(loaded, 50), "load_p95_s": p95, "load_max_s": max(loaded),
                "post_p50_s": percentile(idle_posts + loaded_posts, 50),
                "timed_out": sum(1 for wait in idle + loaded if wait >= PROBE_TIMEOUT_S), "backlog_at_end": backlog,
                "load_clients": len(loads), "load_batches": sum(load.sent for load in loads),
                "load_events_accepted": sum(load.accepted for load in loads),
                "load_events_per_s": sum(load.accepted / load.seconds for load in loads if load.seconds),
                # 429/503 answers the load clients waited out (503 ingest_backlog: the merge was behind)
                "load_refusals": sum(load.post.refusals for load in loads),
                "load_target_events_per_s": target_rate, "load_seconds": max(load.seconds for load in loads),
                "load": load_avg,
            },
            ratio_means="p95 s from POST /v1/batch to the open Membership row, under background load ÷ the 10 s "
                        "target (≤ 1 meets it)",
        ))
    return results
