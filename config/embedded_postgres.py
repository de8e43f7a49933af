"""The embedded PostgreSQL of development and tests (pgserver): started on a Unix socket under
`.data/pg` (never a TCP port), reused while it runs, stopped by the process that started it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from config.embedded import DATA_DIR, DevServerError, file_lock, last_log_line, pid_alive

DATABASE_NAME = "strata"
EMBEDDED_PG_MAJOR = "16"  # the PostgreSQL inside the pgserver wheel


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


def _forget_dead_pg_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last handle-holding process exits; a run that
    was killed never removed its pid, so the server would never stop. Drop dead pids so
    the next run adopts the server and stops it on exit."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


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

        with file_lock(data_dir / ".pg.lock"):
            _forget_dead_pg_handles(pgdata)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except DevServerError:
        raise
    except Exception as exc:  # pgserver raises CalledProcessError, TimeoutExpired, OSError…
        cause = last_log_line(pgdata / "log") or f"{type(exc).__name__}: {exc}"
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
