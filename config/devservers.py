"""The development servers' command line: embedded PostgreSQL (config.embedded_postgres) and
Redis (config.embedded_redis) for development and tests, or the machine's own.

Used only when DATABASE_URL / REDIS_URL are unset, so a fresh laptop needs nothing but
Python. Both servers listen on Unix sockets under `.data/` (or a short runtime dir when
that path is too long for a socket): they never bind a TCP port, so they cannot collide
with — or kill — a PostgreSQL or Redis already running on 5432 / 6379.

Command line (the process edge; settings only read the environment it exports):

    python -m config.devservers exec [--prefer-system] -- CMD ...
        make sure the servers run, export DATABASE_URL / REDIS_URL, run CMD, and stop
        the servers this call started when CMD ends (Ctrl-C included).
    python -m config.devservers env [--prefer-system]   print `export` lines
    python -m config.devservers stop                    stop embedded servers

`exec --bench` (used by `make bench`) runs PostgreSQL as the benchmarks' own embedded
server, configured as a production host of this machine's size (bench_settings), and
Redis as `--prefer-system` does.

`--prefer-system` (used by `make test`) takes the machine's own servers on
127.0.0.1:5432 / 6379 when they answer, embedded ones otherwise.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from config.embedded import DATA_DIR, DevServerError
from config.embedded_postgres import DATABASE_NAME, ensure_postgres, stop_postgres
from config.embedded_redis import ensure_redis, stop_redis

SYSTEM_POSTGRES = ("127.0.0.1", 5432)
SYSTEM_REDIS = ("127.0.0.1", 6379)


@dataclass(frozen=True)
class Urls:
    database_url: str
    redis_url: str


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------ sizing


def bench_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """The memory settings of a PostgreSQL host of this machine's size, as a production
    deployment sizes them (the benchmarks' server, `exec --bench`): a quarter of the memory
    for shared_buffers (at most 8 GB), half as the planner's cache estimate, 1 GB for index
    builds, room for a bulk load's WAL between checkpoints. work_mem stays at its 4 MB: at
    64 MB purchase_sum over the rollups ran 1.8 s instead of 2.3 s, but the planner chose a
    hash anti-join for did_x_never_y that ran 3.7 s instead of 1.9 s (bench/RESULTS.md,
    2026-12-06). The machine's own server keeps
    its distribution defaults (128 MB of shared_buffers) — fine for tests, not for a 1M-
    customer tenant, where an incremental check's random reads of the event index and heap
    would come from the kernel's page cache, one pread per 8 kB page, several times slower
    than from PostgreSQL's buffers (bench/RESULTS.md)."""
    memory = memory_bytes or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mb = memory // 2**20
    return {"shared_buffers": f"{min(mb // 4, 8192)}MB", "effective_cache_size": f"{mb // 2}MB",
            "maintenance_work_mem": f"{min(mb // 16, 1024)}MB", "max_wal_size": "8GB"}


# ------------------------------------------------------------------------------ resolving


def resolve(*, prefer_system: bool, bench: bool = False, data_dir: Path = DATA_DIR) -> tuple[Urls, list[str]]:
    """Return URLs from the environment, the machine's servers, or embedded ones; with
    `bench`, PostgreSQL is the benchmarks' own embedded server (bench_settings, data under
    `bench/` of the data dir) unless DATABASE_URL names one.

    The second value lists the embedded servers this call started ("postgres", "redis"),
    which the caller owns and stops.
    """
    started: list[str] = []
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        if bench:
            database_url = ensure_postgres(data_dir / "bench", settings=bench_settings())
            started.append("postgres")
        elif prefer_system and port_open(*SYSTEM_POSTGRES):
            host, port = SYSTEM_POSTGRES
            database_url = f"postgres://postgres@{host}:{port}/{DATABASE_NAME}"
        else:
            database_url = ensure_postgres(data_dir)
            started.append("postgres")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        if prefer_system and port_open(*SYSTEM_REDIS):
            host, port = SYSTEM_REDIS
            redis_url = f"redis://{host}:{port}/0"
        else:
            redis_url, new = ensure_redis(data_dir)
            if new:
                started.append("redis")
    return Urls(database_url=database_url, redis_url=redis_url), started


def _ensure_system_database(database_url: str) -> None:
    """Create the `strata` database on the machine's own server when it is missing."""
    if "@127.0.0.1:" not in database_url:
        return
    import psycopg

    admin = database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not found:
            conn.execute(f"CREATE DATABASE {DATABASE_NAME}")


def _stop(started: list[str], data_dir: Path) -> None:
    if "redis" in started:
        stop_redis(data_dir)
    # PostgreSQL: pgserver's own atexit handler stops it when this is the last handle.


def _run(command: list[str], started: list[str], data_dir: Path) -> int:
    atexit.register(_stop, started, data_dir)
    child = subprocess.Popen(command)
    # TRICKY: Ctrl-C reaches the whole foreground process group; the child (honcho,
    # pytest) handles it and exits, and we wait for it before stopping the servers.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.devservers")
    sub = parser.add_subparsers(dest="action", required=True)
    for name in ("exec", "env"):
        p = sub.add_parser(name)
        p.add_argument("--prefer-system", action="store_true")
        p.add_argument("--bench", action="store_true",
                       help="PostgreSQL: the benchmarks' embedded server, sized to the machine "
                            "(Redis as --prefer-system)")
        if name == "exec":
            p.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("stop")
    args = parser.parse_args(argv)

    if args.action == "stop":
        stopped = [n for n, f in (("postgres", stop_postgres), ("redis", stop_redis)) if f(DATA_DIR)]
        if stop_postgres(DATA_DIR / "bench"):
            stopped.append("bench postgres")
        print("stopped: " + (", ".join(stopped) or "nothing was running"))
        return 0
    try:
        urls, started = resolve(prefer_system=args.prefer_system or args.bench, bench=args.bench)
        _ensure_system_database(urls.database_url)
    except DevServerError as exc:
        print(f"strata: {exc}", file=sys.stderr)
        return 1
    if args.action == "env":
        print(f"export DATABASE_URL='{urls.database_url}'")
        print(f"export REDIS_URL='{urls.redis_url}'")
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("exec needs a command after --")
    os.environ["DATABASE_URL"] = urls.database_url
    os.environ["REDIS_URL"] = urls.redis_url
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        print(f"strata: command not found: {command[0]}", file=sys.stderr)
        return 127
    return _run(command, started, DATA_DIR)


if __name__ == "__main__":
    sys.exit(main())
