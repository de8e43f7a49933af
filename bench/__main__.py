"""Run benchmarks: `python -m bench [NAME ...] [--quick] [options]` (see `make bench`).

Needs DATABASE_URL and REDIS_URL in the environment (`python -m config.devservers exec
--prefer-system -- …` exports them). The database name in DATABASE_URL is replaced by
`strata_bench`, created on the same server when missing, so a benchmark never touches
development or test data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from bench import BENCHMARKS, Result

REPO = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO / "bench" / "RESULTS.md"
BENCH_DATABASE = "strata_bench"
RESULTS_HEADER = """# Benchmark results

Appended by `python -m bench` (`make bench`); one section per run, newest last. `ratio` is
the thing measured divided by its baseline, run side by side in the same process
(> 1: slower than the baseline, unless the "Ratio is" column says higher is better).
Absolute times are in seconds (`_s`), rates in rows per second (`_per_s`).
"""


# --------------------------------------------------------------------------- database


def with_database(url: str, name: str) -> str:
    """The same server URL (TCP or `?host=/socket/dir`) with another database name."""
    parts = urlsplit(url)
    rebuilt = f"{parts.scheme}://{parts.netloc}/{name}"
    return rebuilt + (f"?{parts.query}" if parts.query else "")


def describe_server(url: str) -> str:
    """host:port or the socket directory, without credentials."""
    parts = urlsplit(url)
    socket_dir = dict(parse_qsl(parts.query)).get("host")
    if socket_dir or not parts.hostname:
        return f"socket {socket_dir or 'default'}"
    return f"{parts.hostname}:{parts.port or 5432}"


def ensure_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(source_url: str) -> str:
    """Point Django at the bench database, migrate the public schema; return its URL."""
    bench_url = with_database(source_url, BENCH_DATABASE)
    ensure_database(source_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = bench_url
    # Local settings: they fall back to embedded servers only when the URLs are unset.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    # Production-like: no per-query recording (DEBUG) and no INFO log lines in the timings.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    django.setup()
    from bench.support import other_sessions, unapplied_migrations

    if other_sessions() and unapplied_migrations():
        # Migrating would change tables under the other run's already-loaded models.
        raise SystemExit(f"bench: another run is using {BENCH_DATABASE} and its public schema has "
                         "unapplied migrations; wait until that run has finished")
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)

    from tenants.services import public_tenant_ensure

    public_tenant_ensure()
    return bench_url


# --------------------------------------------------------------------------- reporting


def fmt(value: float | int | str) -> str:
    if isinstance(value, str):  # e.g. one value per round, "a/b/c"
        return value
    if isinstance(value, int):
        return f"{value:_}"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "_")
    return f"{value:.4g}"


def result_line(result: Result) -> str:
    extras = " ".join(f"{key}={fmt(value)}" for key, value in result.measurements.items())
    return f"{result.name}: ratio={result.ratio:.2f} {extras}".rstrip()


def machine() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (pg_version,) = cursor.fetchone()
        # Random-access ratios (incremental checks) move with what the server caches itself.
        cursor.execute("SHOW shared_buffers")
        (shared_buffers,) = cursor.fetchone()
    uname = subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip()
    return {
        "uname": uname or platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "postgresql": pg_version.split()[0],
        "shared_buffers": shared_buffers,
    }


def git_revision() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def command_line() -> str:
    executable = Path(sys.executable)
    with_repo = executable.absolute()
    try:
        shown = str(with_repo.relative_to(REPO))
    except ValueError:
        shown = str(executable)
    return shlex.join([shown, "-m", "bench", *sys.argv[1:]])


def record(results: list[Result], *, started: dt.datetime, server: str, load: float, others: int = 0) -> None:
    info = machine()
    lines = [
        f"## {started:%Y-%m-%d %H:%M} UTC — {', '.join(dict.fromkeys(r.name for r in results))}",
        "",
        f"- Command: `{command_line()}` (DATABASE_URL/REDIS_URL from "
        f"`python -m config.devservers exec --prefer-system`)",
        f"- Machine: `{info['uname']}`, {info['cpus']} CPUs, Python {info['python']}, "
        f"PostgreSQL {info['postgresql']} ({server}, database `{BENCH_DATABASE}`, "
        f"shared_buffers {info['shared_buffers']}); "
        f"load average {load:.2f} at start (other work on the machine skews the numbers)"
        + (f"; {others} other session(s) on `{BENCH_DATABASE}` at start: another benchmark was "
           "running at the same time" if others else ""),
        f"- Commit: {git_revision()}",
        "",
        "| Benchmark | Ratio | Ratio is | Measurements |",
        "|---|---:|---|---|",
    ]
    for result in results:
        measured = ", ".join(f"{key}={fmt(value)}" for key, value in result.measurements.items())
        lines.append(f"| {result.name} | {result.ratio:.2f} | {result.ratio_means} | {measured} |")
    notes = [f"- {result.name}: {note}" for result in results for note in result.notes]
    if notes:
        lines += ["", *notes]
    text = RESULTS_FILE.read_text() if RESULTS_FILE.exists() else RESULTS_HEADER
    RESULTS_FILE.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- main


def build_parser(modules: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run benchmarks in the dedicated strata_bench database; results go to bench/RESULTS.md.",
    )
    parser.add_argument(
        "benchmarks", nargs="*", metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    for name, module in modules.items():
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser.add_argument_group(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    modules = {name: importlib.import_module(path) for name, path in BENCHMARKS.items()}
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    selected = args.benchmarks or list(BENCHMARKS)

    source_url = os.environ.get("DATABASE_URL", "")
    if not source_url or not os.environ.get("REDIS_URL"):
        print(
            "bench: DATABASE_URL and REDIS_URL must be set — run `make bench` or "
            "`python -m config.devservers exec --prefer-system -- python -m bench …`",
            file=sys.stderr,
        )
        return 2

    started = dt.datetime.now(dt.UTC)
    load = os.getloadavg()[0]
    bench_url = setup_django(source_url)
    from bench.support import other_sessions, purge_leftovers

    # Another run's objects look like leftovers: purge only when nobody else is connected.
    others = other_sessions()
    if others:
        print(f"bench: {others} other session(s) on {BENCH_DATABASE} (another benchmark running?): "
              "leftovers not purged, and the numbers may be skewed", file=sys.stderr)
    else:
        purged = purge_leftovers()
        if purged:
            print(f"bench: removed {purged} leftovers of an interrupted earlier run", file=sys.stderr)

    results: list[Result] = []
    for name in selected:
        for result in modules[name].run(args):
            print(result_line(result), flush=True)
            for note in result.notes:
                print(f"{result.name}: {note}", flush=True)
            results.append(result)
    if results and not args.no_record:
        record(results, started=started, server=describe_server(bench_url), load=load, others=others)
        print(f"bench: results appended to {RESULTS_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
