"""What the embedded development servers share: where their data lives, the error that names
the cause and the fix, and small process helpers."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("STRATA_DATA_DIR", BASE_DIR / ".data"))
# Unix socket paths are limited to 107 bytes on Linux (sun_path).
MAX_SOCKET_PATH = 100


class DevServerError(Exception):
    """A dev server could not start; the message is one line naming the cause and the fix."""


def last_log_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
    return (errors or lines or [""])[-1][:300]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
