"""The embedded PostgreSQL and Redis behind `make run` (real servers, in a temp data dir)."""

import os
import subprocess
import time
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from config import devservers, embedded, embedded_postgres, embedded_redis
from config.embedded import DevServerError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path
    embedded_redis.stop_redis(tmp_path)
    embedded_postgres.stop_postgres(tmp_path)


def test_embedded_postgres_starts_answers_and_is_reused(data_dir):
    url = embedded_postgres.ensure_postgres(data_dir)
    conninfo = url.replace("postgres://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "strata"
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""  # socket only
    assert embedded_postgres.ensure_postgres(data_dir) == url  # a second start reuses it


def test_settings_are_applied_with_a_restart_only_when_one_differs(data_dir):
    settings = {"shared_buffers": "48MB", "maintenance_work_mem": "96MB"}  # the first needs a restart
    url = embedded_postgres.ensure_postgres(data_dir, settings=settings)
    conninfo = url.replace("postgres://", "postgresql://")

    def running() -> tuple:
        with psycopg.connect(conninfo) as conn:
            return conn.execute("SELECT current_setting('shared_buffers'), current_setting('maintenance_work_mem'), "
                                "pg_postmaster_start_time()").fetchone()

    shared, maintenance, started = running()
    assert (shared, maintenance) == ("48MB", "96MB")
    again = {"shared_buffers": "48MB", "maintenance_work_mem": "0.125GB"}
    assert embedded_postgres.ensure_postgres(data_dir, settings=again) == url
    assert running() == ("48MB", "128MB", started)  # applied on reload: the same server


def test_bench_settings_size_the_server_to_the_machine():
    assert devservers.bench_settings(24 * 2**30) == {
        "shared_buffers": "6144MB", "effective_cache_size": "12288MB", "maintenance_work_mem": "1024MB",
        "max_wal_size": "8GB"}
    assert devservers.bench_settings(64 * 2**30)["shared_buffers"] == "8192MB"  # capped
    assert devservers.bench_settings(4 * 2**30)["maintenance_work_mem"] == "256MB"


def test_the_bench_server_is_its_own_sized_cluster_unless_a_url_is_given(data_dir, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(devservers, "bench_settings", lambda: {"shared_buffers": "40MB"})
    try:
        urls, started = devservers.resolve(prefer_system=True, bench=True, data_dir=data_dir)
        assert "postgres" in started and (data_dir / "bench" / "pg" / "PG_VERSION").exists()
        with psycopg.connect(urls.database_url.replace("postgres://", "postgresql://")) as conn:
            assert conn.execute("SHOW shared_buffers").fetchone()[0] == "40MB"
        monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example:5432/x")
        assert devservers.resolve(prefer_system=True, bench=True, data_dir=data_dir)[0].database_url.endswith("/x")
    finally:
        embedded_postgres.stop_postgres(data_dir / "bench")


def test_embedded_redis_starts_on_a_socket_and_is_reused(data_dir):
    url, started = embedded_redis.ensure_redis(data_dir)
    assert started and url.startswith("unix://")
    client = redis.Redis.from_url(url)
    assert client.ping()
    assert client.config_get("port")["port"] == "0"  # never binds a TCP port
    assert embedded_redis.ensure_redis(data_dir) == (url, False)


def test_stale_redis_socket_from_a_killed_run_is_recovered(data_dir):
    sock = embedded_redis.redis_socket_path(data_dir)
    sock.parent.mkdir(parents=True)
    sock.write_text("left behind by a killed server")
    url, started = embedded_redis.ensure_redis(data_dir)
    assert started and redis.Redis.from_url(url).ping()


def test_machine_servers_on_default_ports_are_left_alone(data_dir):
    before = devservers.port_open(*devservers.SYSTEM_REDIS), devservers.port_open(*devservers.SYSTEM_POSTGRES)
    embedded_redis.ensure_redis(data_dir)
    embedded_redis.stop_redis(data_dir)
    after = devservers.port_open(*devservers.SYSTEM_REDIS), devservers.port_open(*devservers.SYSTEM_POSTGRES)
    assert before == after


def test_a_file_where_the_data_dir_should_be_is_one_clear_error(tmp_path):
    (tmp_path / "pg").write_text("oops")
    with pytest.raises(DevServerError) as caught:
        embedded_postgres.ensure_postgres(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "is a file" in message and "remove it" in message


def test_a_cluster_of_another_version_is_one_clear_error(tmp_path):
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("15\n")
    with pytest.raises(DevServerError, match="holds a PostgreSQL 15 cluster .* set DATABASE_URL"):
        embedded_postgres.ensure_postgres(tmp_path)


def test_long_data_paths_get_a_short_socket(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    assert len(str(embedded_redis.redis_socket_path(deep))) <= embedded.MAX_SOCKET_PATH


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["STRATA_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "config.devservers", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )


def test_exec_exports_urls_runs_the_command_and_stops_what_it_started(data_dir):
    script = "import os, sys; print(os.environ['DATABASE_URL']); print(os.environ['REDIS_URL']); sys.exit(3)"
    done = run_cli(data_dir, "exec", "--", sys.executable, "-c", script)
    assert done.returncode == 3, done.stderr  # the command's exit code comes through
    database_url, redis_url = done.stdout.split()
    assert database_url.startswith("postgres://postgres@/strata?host=")
    assert redis_url == f"unix://{embedded_redis.redis_socket_path(data_dir)}"
    assert not (data_dir / "pg" / "postmaster.pid").exists()  # stopped on exit
    assert not embedded_redis.redis_ping(embedded_redis.redis_socket_path(data_dir))


def test_exec_failure_is_one_line_without_a_traceback(tmp_path):
    (tmp_path / "pg").write_text("oops")
    done = run_cli(tmp_path, "exec", "--", "true")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("strata: embedded PostgreSQL")
    assert "Traceback" not in done.stderr


def test_exec_does_not_choose_the_settings_module_for_its_command():
    """`make test` runs pytest through devservers; pytest must get its own settings."""
    code = "import os; print(os.environ.get('DJANGO_SETTINGS_MODULE'))"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://x@127.0.0.1/x", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    done = subprocess.run([sys.executable, "-m", "config.devservers", "exec", "--", sys.executable, "-c", code],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "None", done.stderr


def test_servers_left_by_a_killed_run_are_adopted_and_stopped_by_the_next(data_dir):
    """A `make run` killed with -9 leaves its servers up; the next run takes them over and
    stops them when it ends."""
    killed = subprocess.Popen(
        [sys.executable, "-m", "config.devservers", "exec", "--", "sleep", "60"], cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        | {"STRATA_DATA_DIR": str(data_dir)},
    )
    sock = embedded_redis.redis_socket_path(data_dir)
    for _ in range(300):
        if embedded_redis.redis_ping(sock) and (data_dir / "pg" / "postmaster.pid").exists():
            break
        time.sleep(0.1)
    killed.kill()
    killed.wait()
    assert embedded_redis.redis_ping(sock)  # orphaned, still running

    done = run_cli(data_dir, "exec", "--", "true")
    assert done.returncode == 0, done.stderr
    assert not embedded_redis.redis_ping(sock)
    assert not (data_dir / "pg" / "postmaster.pid").exists()
