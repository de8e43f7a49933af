"""A primary and its streaming replica, made from the machine's PostgreSQL binaries (the
embedded server's as a fallback) in a temporary directory, for the replica suite.

Both listen on 127.0.0.1 only, on free ports, with trust authentication; the replica is a
`pg_basebackup -R` of the primary, streaming from it. Under root the servers run as the
`postgres` user (PostgreSQL refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
hot_standby = on
fsync = off
full_page_writes = off
shared_buffers = 64MB
max_connections = 60
"""


@dataclass
class Server:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class ReplicaPair:
    primary: Server
    replica: Server
    bindir: Path

    def stop(self) -> None:
        for server in (self.replica, self.primary):
            _run(self.bindir / "pg_ctl", "-D", server.directory, "-m", "immediate", "-w", "stop", check=False)


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, else the embedded server's."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if (Path(found) / "pg_basebackup").exists():
            return Path(found)
    try:
        import pgserver
    except ImportError:
        return None
    embedded = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return embedded if (embedded / "pg_basebackup").exists() else None


def start_pair(base: Path) -> ReplicaPair:
    """Start both servers under `base`, an empty directory whose parents the server user
    can traverse (e.g. from tempfile.mkdtemp())."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries with pg_basebackup found")
    base.mkdir(parents=True, exist_ok=True)
    sockets = base / "sockets"
    sockets.mkdir(exist_ok=True)
    _hand_over(base)
    primary = Server(base / "primary", _free_port())
    replica = Server(base / "replica", _free_port())
    _run(bindir / "initdb", "-D", primary.directory, "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync")
    with open(primary.directory / "postgresql.conf", "a") as conf:
        conf.write(SERVER_SETTINGS.format(port=primary.port, sockets=sockets))
    _run(bindir / "pg_ctl", "-D", primary.directory, "-l", base / "primary.log", "-w", "start")
    _run(bindir / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
         "-D", replica.directory, "-R", "-X", "stream", "--checkpoint=fast")
    with open(replica.directory / "postgresql.conf", "a") as conf:
        conf.write(f"port = {replica.port}\n")
    _run(bindir / "pg_ctl", "-D", replica.directory, "-l", base / "replica.log", "-w", "start")
    return ReplicaPair(primary=primary, replica=replica, bindir=bindir)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


def _hand_over(base: Path) -> None:
    user = _server_user()
    if user is not None:
        shutil.chown(base, user.pw_uid, user.pw_gid)
        for child in base.iterdir():
            shutil.chown(child, user.pw_uid, user.pw_gid)


def _run(*command, check: bool = True) -> subprocess.CompletedProcess:
    user = _server_user()

    def demote() -> None:
        if user is not None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120,
                          preexec_fn=demote, cwd="/", env={**os.environ, "LC_ALL": "C"})
    if check and done.returncode:
        raise RuntimeError(f"{Path(str(command[0])).name} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done
