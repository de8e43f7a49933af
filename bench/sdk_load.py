"""Many SDKs at once: small batches and membership lookups at a fixed rate, against raw COPY.

Thing: a real gunicorn (bench.ingest.Server: production settings, `--sdk-workers` sync
workers, default 2, one per core here) and its merger serving a fresh bench tenant. `--sdk-clients`
client threads (default 48, keep-alive where the server keeps the connection) send
requests open-loop at `--sdk-rate` events per second (default 3,000) for `--sdk-seconds`
(default 30): batches of `--sdk-batch` track events (default 20, what analytics.js and the
server SDKs flush), and for every four batches one membership lookup
(`GET /v1/profiles/<userId>/segments`, lookup key and the userId's signature), so a fifth
of the requests are reads (`--sdk-read-share`). Latency is measured from each request's
*scheduled* time, so a server that falls behind is charged for its queue. Every answer
must be 200, with every event accepted.

Baseline, in the same process: the same events, mapped to the customers the HTTP phase
created and given new message ids, COPYed into the same table one batch per COPY (each its
own transaction, as each request is), one after the other.

Before the timed load every user sends one event (500-event batches) and the workspace's
tables are analysed: the steady state of SDK traffic, where users are known.

ratio = HTTP events/s achieved ÷ raw COPY events/s of the same small batches (higher is
better). The issue's target is absolute: ≥ 3,000 events/s with p95 ≤ 200 ms under 48
clients; `kept_up` is 1 when the server finished within a second of the schedule.
A batch is answered once its items are in the inbox; the merger (a Celery worker on the
`freshness` queue, bench.ingest.Server) stores them: `stored_lag_s` is how long after the
last answer the inbox was empty, `stored_events_per_s` the events over the whole time until
then. Also: where the CPU went (bench.lookup's accounting, the merger with the workers) and
per request.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from bench import Result

RATE, SECONDS, CLIENTS, WORKERS, BATCH, READ_SHARE = 3_000, 30, 48, 2, 20, 0.2
USERS = 5_000
SEED = 20261207
LOOKUP_LAG_S = 2  # a lookup asks for a user whose events were scheduled this long before (known by then)


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--sdk-rate", type=int, default=RATE, help=f"events per second sent (default {RATE:_})")
    group.add_argument("--sdk-seconds", type=int, default=SECONDS, help=f"seconds of load (default {SECONDS})")
    group.add_argument("--sdk-clients", type=int, default=CLIENTS, help=f"client threads (default {CLIENTS})")
    group.add_argument("--sdk-workers", type=int, default=WORKERS, help=f"gunicorn workers (default {WORKERS})")
    group.add_argument("--sdk-batch", type=int, default=BATCH, help=f"events per batch (default {BATCH})")
    group.add_argument("--sdk-read-share", type=float, default=READ_SHARE,
                       help=f"share of requests that are lookups (default {READ_SHARE})")


def _schedule(args, batches: list[list[dict]], auth: dict, lookup: tuple[str, str]) -> list[tuple]:
    """(offset s, method, path, headers, body, events) for every request, in time order:
    the batches at the event rate, lookups of users sent LOOKUP_LAG_S before spread between
    them (the first LOOKUP_LAG_S seconds have none)."""
    from apikeys.secrets import user_hash

    key, secret = lookup
    per_batch = 1 / (args.sdk_rate / args.sdk_batch)
    reads_per_batch = args.sdk_read_share / (1 - args.sdk_read_share)
    lag = int(LOOKUP_LAG_S / per_batch)  # batches sent before a user is looked up
    rng = random.Random(SEED)
    requests, owed, seen = [], 0.0, []
    for i, items in enumerate(batches):
        offset = i * per_batch
        body = json.dumps({"batch": items}, separators=(",", ":")).encode()
        requests.append((offset, "POST", "/v1/batch", auth, body, len(items)))
        seen.append([item["userId"] for item in items])
        owed += reads_per_batch if i >= lag else 0
        while owed >= 1:
            owed -= 1
            user = rng.choice(rng.choice(seen[: i - lag + 1]))
            headers = {"Authorization": f"Bearer {key}", "X-User-Hash": user_hash(secret, user)}
            requests.append((offset + per_batch / 2, "GET", f"/v1/profiles/{quote(user, safe='')}/segments",
                             headers, None, 0))
    return requests


def _known_users(batches: list[list[dict]], auth: dict) -> list[tuple]:
    """Warm-up requests: one `signed_in` event per user in 500-event batches, so the timed
    load meets the steady state SDK traffic is in (every user known), not first sight."""
    users = sorted({item["userId"] for items in batches for item in items})
    chunks = [users[i:i + 500] for i in range(0, len(users), 500)]
    return [(i * 0.05, "POST", "/v1/batch", auth, json.dumps({"batch": [
        {"type": "track", "userId": user, "event": "signed_in", "messageId": f"warmup-{user}"} for user in chunk]}).encode(),
        len(chunk)) for i, chunk in enumerate(chunks)]


def _analyze(schema: str) -> None:
    """Statistics for the warmed-up tables, as autovacuum gives a workspace in use (a
    30-second run of a new one would otherwise be planned as nearly empty tables)."""
    import psycopg

    from bench.support import database_url, quote_ident

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        for table in ("customers_customer", "customers_customeridentity", "customers_event",
                      "customers_eventdefinition"):
            conn.execute(f"ANALYZE {table}")


def _open_loop(port: int, host: str, requests: list[tuple], clients: int) -> tuple[dict, dict]:
    """Send every request at its scheduled time; latencies (from the schedule) per method,
    and what went wrong (a batch must be 200 with every event accepted)."""
    from bench.support import open_loop

    answers, errors, wall = open_loop(port, host, [request[:5] for request in requests], clients)
    latencies: dict[str, list[float]] = {"POST": [], "GET": []}
    for answer in answers:
        method, path, *_, events = requests[answer.index][1:]
        latencies[method].append(answer.latency_s)
        if answer.status != 200 or (events and json.loads(answer.body).get("accepted") != events):
            errors.append(f"{method} {path}: {answer.status}: {answer.body[:200]!r}")
    return latencies, {"errors": errors, "wall_s": wall}


def run(args: argparse.Namespace) -> list[Result]:
    import base64
    import os

    from django.db import connection
    from django_tenants.utils import schema_context

    from apikeys.selectors import identity_secret_current, lookup_key_current, write_key_current
    from bench.ingest import Server, _copy_rows, _raw_copy, _tail, build_batches
    from bench.lookup import _CpuUse
    from bench.support import admin_email_for, drop_tenants, new_run_id, percentile
    from tenants.services import tenant_create

    seconds = 5 if args.quick else args.sdk_seconds
    if min(args.sdk_rate, seconds, args.sdk_clients, args.sdk_workers, args.sdk_batch) < 1 \
            or not 0 <= args.sdk_read_share < 1:
        raise SystemExit("bench: --sdk-rate/seconds/clients/workers/batch must be at least 1, "
                         "--sdk-read-share in [0, 1)")
    count = max(1, args.sdk_rate * seconds // args.sdk_batch)
    batches = build_batches(count, USERS, size=args.sdk_batch, seed=SEED)
    events = count * args.sdk_batch
    slug = f"bench-{new_run_id()}-sdk"
    # The load must meet the server, not the limiter (a write key's default is per tenant).
    os.environ["RATE_LIMIT_TRACKING"] = f"{args.sdk_rate * 100}/s"
    os.environ["RATE_LIMIT_LOOKUP"] = f"{args.sdk_rate * 100}/s"
    with tempfile.TemporaryDirectory(prefix="bench-sdk-") as tmp:
        server = Server(Path(tmp) / "gunicorn.log", args.sdk_workers, merger=True)
        try:
            connection.set_schema_to_public()
            tenant = tenant_create(slug=slug, name=f"Bench SDK load {slug}", admin_email=admin_email_for(slug))
            schema, host = tenant.schema_name, tenant.get_primary_domain().domain
            with schema_context(schema):
                write_key = write_key_current().key
                lookup = (lookup_key_current().key, identity_secret_current().secret)
            connection.set_schema_to_public()
            auth = {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
                    "Content-Type": "application/json"}
            requests = _schedule(args, batches, auth, lookup)
            server.start()
            _, warmed = _open_loop(server.port, host, _known_users(batches, auth), 2)
            if warmed["errors"]:
                raise RuntimeError(f"the warm-up failed: {warmed['errors'][:3]}")
            server.wait_stored(schema)
            _analyze(schema)
            reads = sum(1 for r in requests if r[1] == "GET")
            print(f"sdk_load: {count} batches × {args.sdk_batch} events and {reads} lookups at "
                  f"{args.sdk_rate} events/s for {seconds} s from {args.sdk_clients} clients to {server.base} "
                  f"({args.sdk_workers} workers)…", file=sys.stderr, flush=True)
            with _CpuUse(server) as cpu:
                latencies, outcome = _open_loop(server.port, host, requests, args.sdk_clients)
                stored_lag = server.wait_stored(schema)
            if outcome["errors"]:
                raise RuntimeError(f"{len(outcome['errors'])} requests failed, e.g. {outcome['errors'][:3]}")
            row_batches = _copy_rows(schema, batches)
            copy_s, copy_cpu_s = _raw_copy(schema, row_batches)
        except BaseException:
            print(f"sdk_load: the last lines gunicorn logged:\n{_tail(server.log, 60)}", file=sys.stderr)
            raise
        finally:
            server.stop()
            drop_tenants([slug])

    sent_s = outcome["wall_s"]
    http_rate, copy_rate = events / sent_s, events / copy_s
    writes = [s * 1000 for s in latencies["POST"]]
    lookups = [s * 1000 for s in latencies["GET"]] or [0.0]
    served = len(requests)
    return [Result(
        name="sdk_load",
        ratio=http_rate / copy_rate,
        measurements={
            "events_per_s": http_rate,
            "asked_events_per_s": args.sdk_rate,
            "kept_up": int(sent_s <= seconds + 1.5),
            "stored_events_per_s": events / (sent_s + stored_lag),
            "stored_lag_s": stored_lag,
            "batch_p50_ms": percentile(writes, 50),
            "batch_p95_ms": percentile(writes, 95),
            "batch_max_ms": max(writes),
            "lookup_p50_ms": percentile(lookups, 50),
            "lookup_p95_ms": percentile(lookups, 95),
            "copy_events_per_s": copy_rate,
            "batches": count,
            "lookups": len(latencies["GET"]),
            "events": events,
            "wall_s": sent_s,
            **cpu.totals,
            "server_cpu_us_per_request": cpu.totals["server_cpu_s"] / served * 1e6,
            "postgres_cpu_us_per_request": cpu.totals["postgres_cpu_s"] / served * 1e6,
            "copy_postgres_cpu_s": copy_cpu_s,
            "clients": args.sdk_clients,
            "workers": args.sdk_workers,
            "batch_events": args.sdk_batch,
        },
        ratio_means=(f"HTTP events/s of {args.sdk_batch}-event batches with {args.sdk_read_share:.0%} lookups, "
                     f"{args.sdk_clients} clients ÷ raw COPY of the same batches (higher is better; target "
                     "≥ 3,000 events/s with batch p95 ≤ 200 ms)"),
    )]
