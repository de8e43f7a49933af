"""The membership lookup under load: `GET /v1/profiles/<userId>/segments` at a fixed rate.

Thing: a real gunicorn (bench.ingest.Server: production settings, 3 sync workers as the
Procfile's WEB_CONCURRENCY, `--lookup-workers`) serving the generator's kept data set (1M customers / 20M events by default, 10k /
200k with --quick) with the ten `bench-report-*` segments of bench/reports.py evaluated.
Requests go out open-loop at `--lookup-rate` per second (default 500) for
`--lookup-seconds` (default 20) from client threads with keep-alive connections, each
with the workspace's lookup key and the userId's signature (as a web page sends them), over
`--lookup-users` customers (default 20,000) drawn at random: the first pass over a user
misses the cache, later ones hit. Latency is measured from each request's *scheduled* time,
so a server that falls behind is charged for the queue it builds (no coordinated
omission). Every answer must be 200.

Baseline, in the same process: the same lookups as bare SQL on one psycopg connection —
the identity, then the open memberships joined to their segments, the two statements the
lookup runs on a miss — one after the other for the same users.

ratio = lookup p99 / bare SQL p99 (target: the lookup's p99 ≤ 20 ms; the ratio says what
HTTP, authentication, the rate limiter and the cache add to the database's own answer).

Also reported, for the timed phase (after a warm-up of 200 lookups, so every worker has its
connections): where the CPU went — `client_cpu_s` (this process's sending threads),
`server_cpu_s` (the gunicorn workers), `postgres_cpu_s` (their backends, by PGAPPNAME),
`redis_cpu_s` (the Redis server), `machine_cpu_s` (every core, other work included) — and
per lookup as `server_cpu_us_per_lookup` and `all_cpu_us_per_lookup`.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 1_000_000, 20_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
RATE, SECONDS, USERS, CLIENTS, WORKERS = 500, 20, 20_000, 24, 3
SEED = 20261206

BARE_SQL = """
SELECT s.key, m.entered_at FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id
WHERE m.customer_id = (SELECT id FROM customers_customer WHERE external_id = %s)
  AND m.exited_at IS NULL AND s.status <> 'archived'
ORDER BY s.key
"""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--lookup-rate", type=int, default=RATE, help=f"requests per second (default {RATE})")
    group.add_argument("--lookup-seconds", type=int, default=SECONDS, help=f"how long (default {SECONDS})")
    group.add_argument("--lookup-users", type=int, default=USERS, help=f"distinct users asked about (default {USERS})")
    group.add_argument("--lookup-workers", type=int, default=WORKERS,
                       help=f"gunicorn sync workers (default {WORKERS}, the Procfile's WEB_CONCURRENCY)")


def _users(count: int) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id FROM customers_customer ORDER BY random() LIMIT %s", [count])
        return [row[0] for row in cursor.fetchall()]


def _open_loop(port: int, host: str, requests: list[tuple[float, str, dict]], clients: int) -> tuple[list[float], dict]:
    """Send each (scheduled offset, path, headers) at its time; latencies from schedule."""
    from bench.support import open_loop

    answers, errors, wall = open_loop(port, host, [(at, "GET", path, headers, None) for at, path, headers in requests],
                                      clients)
    errors += [f"{a.status}: {a.body[:200]!r}" for a in answers if a.status != 200]
    hits = sum(1 for a in answers if a.status == 200 and a.headers.get("X-Lookup-Cache") == "hit")
    return [a.latency_s for a in answers], {"errors": errors, "hits": hits, "wall_s": wall}


class _CpuUse:
    """CPU seconds spent while the block runs, by the client, the server's workers, their
    PostgreSQL backends, Redis and the whole machine (bench.support's /proc accounting)."""

    def __init__(self, server) -> None:
        self.server = server

    def __enter__(self):
        import redis
        from django.conf import settings

        from bench.support import backend_pids, machine_busy_s, process_cpu_s

        self.workers = self.server.processes()
        self.backends = backend_pids(self.server.application_name)
        self.redis = [int(redis.Redis.from_url(settings.REDIS_URL).info("server")["process_id"])]
        self.before = {pid: process_cpu_s(pid) for pid in self.workers + self.backends + self.redis}
        self.client, self.machine = time.process_time(), machine_busy_s()
        return self

    def __exit__(self, *exc) -> None:
        from bench.support import machine_busy_s, process_cpu_s

        def used(pids):
            return round(sum(process_cpu_s(pid) - self.before[pid] for pid in pids), 2)

        self.totals = {"client_cpu_s": round(time.process_time() - self.client, 2), "server_cpu_s": used(self.workers),
                       "postgres_cpu_s": used(self.backends), "redis_cpu_s": used(self.redis),
                       "machine_cpu_s": round(machine_busy_s() - self.machine, 2)}


def _bare_sql(users: list[str]) -> list[float]:
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for user in users:
            started = time.perf_counter()
            cursor.execute(BARE_SQL, [user])
            cursor.fetchall()
            times.append(time.perf_counter() - started)
    return times


def run(args: argparse.Namespace) -> list[Result]:
    import os
    from urllib.parse import quote

    from apikeys.secrets import user_hash
    from apikeys.selectors import identity_secret_current, lookup_key_current
    from bench.ingest import Server, _tail
    from bench.reports import _segments
    from bench.insights import _actor
    from bench.support import kept_dataset, percentile

    seconds = 5 if args.quick else args.lookup_seconds
    total = args.lookup_rate * seconds
    with kept_dataset(args, default=(DEFAULT_CUSTOMERS, DEFAULT_EVENTS), quick=(QUICK_CUSTOMERS, QUICK_EVENTS)) \
            as (tenant, now, note):
        _segments(_actor(tenant), now)
        users = _users(min(args.lookup_users, total))
        key, secret = lookup_key_current().key, identity_secret_current().secret
        rng = random.Random(SEED)
        asked = [rng.choice(users) for _ in range(total)]
        requests = [(i / args.lookup_rate, f"/v1/profiles/{quote(user, safe='')}/segments",
                     {"Authorization": f"Bearer {key}", "X-User-Hash": user_hash(secret, user)})
                    for i, user in enumerate(asked)]
        bare = _bare_sql(asked[: min(total, 5_000)])
        host = tenant.get_primary_domain().domain
        os.environ["RATE_LIMIT_LOOKUP"] = f"{args.lookup_rate * 100}/s"  # the load must not meet the limiter
        with tempfile.TemporaryDirectory(prefix="bench-lookup-") as tmp:
            server = Server(Path(tmp) / "gunicorn.log", args.lookup_workers)
            try:
                server.start()
                print(f"lookup: {total} lookups at {args.lookup_rate}/s over {len(users)} users from "
                      f"{server.base}…", file=sys.stderr, flush=True)
                _open_loop(server.port, host, [(i / 400, p, h) for i, (_, p, h) in enumerate(requests[:200])], 8)
                with _CpuUse(server) as cpu:
                    latencies, outcome = _open_loop(server.port, host, requests, CLIENTS)
            except BaseException:
                print(f"lookup: the last lines gunicorn logged:\n{_tail(server.log, 60)}", file=sys.stderr)
                raise
            finally:
                server.stop()
    if outcome["errors"]:
        raise SystemExit(f"lookup: {len(outcome['errors'])} failed answers, e.g. {outcome['errors'][:3]}")
    lookup_ms = sorted(s * 1000 for s in latencies)
    bare_ms = sorted(s * 1000 for s in bare)
    p99, bare_p99 = percentile(lookup_ms, 99), percentile(bare_ms, 99)
    return [Result("lookup", round(p99 / bare_p99, 1), {
        "p50_ms": round(percentile(lookup_ms, 50), 2), "p95_ms": round(percentile(lookup_ms, 95), 2),
        "p99_ms": round(p99, 2), "max_ms": round(lookup_ms[-1], 2), "bare_sql_p50_ms": round(percentile(bare_ms, 50), 3),
        "bare_sql_p99_ms": round(bare_p99, 3), "achieved_per_s": round(len(latencies) / outcome["wall_s"], 1),
        "requests": len(latencies), "cache_hit_share": round(outcome["hits"] / len(latencies), 3),
        "users": len(users), "workers": args.lookup_workers, **cpu.totals,
        "server_cpu_us_per_lookup": round(cpu.totals["server_cpu_s"] / len(latencies) * 1e6),
        "all_cpu_us_per_lookup": round(sum(v for k, v in cpu.totals.items() if k != "machine_cpu_s")
                                       / len(latencies) * 1e6)},
        f"lookup p99 at {args.lookup_rate}/s over HTTP / bare SQL p99 of the same lookups (target p99 ≤ 20 ms)",
        notes=(note,))]
