"""A 1M-row customer CSV import, against a raw COPY of the same rows.

Thing: in this process, on a fresh bench tenant, the import service path a Celery worker
runs, start to finish: `import_upload` (whole-file scan: size, SHA-256, strict UTF-8;
header and delimiter detection; the file stored in default storage under a temporary
MEDIA_ROOT), `import_start` (mapping check), `import_run` (count pass, then 5,000-row chunks:
cells read and checked per row, then the set-based customer upsert of
customers/imports/customer_upsert.py — registry, identities, new customers, changed
traits — with row problems, checkpoint and progress committed per chunk). Before the clock
starts, a two-row file is imported the same way (not counted): the first import of a
process loads and compiles the Celery enqueue path (~1.7 s here, as the source is not
byte-compiled), which a running worker has long done. The CSV is deterministic
(random.Random(seed)): external_id, email, name, country, plan, company_size,
signed_up_at, email_opt_in and two custom traits (a number and a text), about 1% of rows
bad (an invalid email or a non-numeric company size) so the problem path is exercised.

Also timed: uploading the same file again (`reimport_s`), which must change nothing — every
good row comes back `unchanged`.

Baseline, same process, own psycopg connection: the same good rows, with `-copy` appended
to the external ids, COPYed straight into customers_customer of the same schema in one
`COPY … FROM STDIN` (rows built before the clock starts): the database's cost of storing
the rows and nothing else (no identities, no parsing, no checks).

ratio = import seconds / raw COPY seconds (lower is better).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import Result

DEFAULT_ROWS, QUICK_ROWS = 1_000_000, 100_000
SEED = 20261201
PLANS = ("free", "starter", "pro", "enterprise")
COUNTRIES = ("DE", "FR", "GB", "US", "NL", "ES", "IT", "PL", "SE", "BR")
SEGMENTS = ("smb", "mid-market", "enterprise", "startup")
HEADER = ["external_id", "email", "name", "country", "plan", "company_size", "signed_up_at", "email_opt_in",
          "nps_last", "segment"]
MAPPING = {"external_id": "external_id", "email": "trait:email", "name": "trait:name", "country": "trait:country",
           "plan": "trait:plan", "company_size": "trait:company_size", "signed_up_at": "trait:signed_up_at",
           "email_opt_in": "trait:email_opt_in", "nps_last": "trait:bench_nps_last",
           "segment": "trait:bench_segment"}
COPY_COLUMNS = ("external_id", "anonymous_ids", "email", "name", "gender", "income_band", "occupation", "country",
                "region", "city", "language", "timezone", "company", "industry", "device_type", "os", "tech_stack",
                "plan", "company_size", "signed_up_at", "email_opt_in", "traits", "created_at", "updated_at")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--csv-rows", type=int, default=None,
                       help=f"rows in the CSV (default {DEFAULT_ROWS:_}, --quick {QUICK_ROWS:_})")


def write_csv(path: Path, rows: int, seed: int = SEED) -> tuple[int, int]:
    """The benchmark's file; (good rows, bad rows)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(rows):
            roll = rng.random()
            email = f"user{i}@example.com" if roll >= 0.005 else f"user{i} at example.com"
            size = str(rng.randrange(1, 5000)) if not 0.005 <= roll < 0.01 else "lots"
            bad += roll < 0.01
            signed = start + timedelta(minutes=rng.randrange(1_000_000))
            writer.writerow([f"csv-{i:07d}", email, f"Customer {i}", rng.choice(COUNTRIES), rng.choice(PLANS), size,
                             signed.isoformat(), rng.choice(("yes", "no")), rng.randrange(0, 11),
                             rng.choice(SEGMENTS)])
    return rows - bad, bad


def _copy_rows(path: Path) -> list[tuple]:
    """The good rows of the file as customers_customer rows for COPY (ids suffixed)."""
    now = datetime.now(UTC)
    out = []
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        next(reader)
        for external_id, email, name, country, plan, size, signed, opt_in, nps, segment in reader:
            if "@" not in email or not size.isdigit():
                continue
            traits = json.dumps({"bench_nps_last": int(nps), "bench_segment": segment})
            out.append((external_id + "-copy", "{}", email, name, "", "", "", country, "", "", "", "", "", "", "", "",
                        "{}", plan, int(size), signed, opt_in == "yes", traits, now, now))
    return out


def _raw_copy(schema: str, rows: list[tuple]) -> float:
    import psycopg

    from bench.support import database_url, quote_ident

    statement = f"COPY customers_customer ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    with psycopg.connect(database_url()) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        with conn.cursor() as cursor:
            started = time.perf_counter()
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            return time.perf_counter() - started


def _import(admin, path: Path) -> tuple[float, object]:
    from django.core.files import File
    from django.utils import timezone

    from customers.imports.services import import_run, import_start, import_upload

    started = time.perf_counter()
    with path.open("rb") as handle:
        job = import_upload(actor=admin, kind="customers", upload=File(handle, name="customers.csv"),
                            now=timezone.now())
    job = import_start(actor=admin, job=job, mapping=MAPPING, now=timezone.now())
    job = import_run(job_id=job.pk, clock=timezone.now)
    return time.perf_counter() - started, job


def _warm_up(admin, tmp: Path) -> None:
    """Import a two-row file (ids outside the benchmark's) so first-use costs of the
    process stay out of the timings."""
    path = tmp / "warm-up.csv"
    path.write_text(",".join(HEADER) + "\n" + "".join(
        f"warmup-{i},w{i}@example.com,W,DE,pro,1,2024-01-01T00:00:00+00:00,yes,1,smb\n" for i in range(2)))
    _, job = _import(admin, path)
    if job.status != "succeeded":
        raise RuntimeError(f"warm-up import: {job.status} {job.error}")


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from django.test.utils import override_settings
    from django_tenants.utils import schema_context

    from bench.support import admin_email_for, drop_tenants, new_run_id
    from tenants.models import TenantMembership
    from tenants.services import tenant_create

    rows = args.csv_rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    slug = f"bench-{new_run_id()}-csv"
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp, override_settings(MEDIA_ROOT=tmp):
        path = Path(tmp) / "customers.csv"
        good, bad = write_csv(path, rows)
        size = path.stat().st_size
        try:
            connection.set_schema_to_public()
            email = admin_email_for(slug)
            tenant = tenant_create(slug=slug, name=f"Bench CSV {slug}", admin_email=email)
            admin = TenantMembership.objects.select_related("role", "user").get(tenant=tenant, user__email=email)
            with schema_context(tenant.schema_name):
                _warm_up(admin, Path(tmp))
                print(f"csv_import: importing {rows:_} rows ({size / 1e6:.0f} MB)…", file=sys.stderr, flush=True)
                import_s, job = _import(admin, path)
                if (job.status, job.rows_imported, job.rows_failed) != ("succeeded", good, bad):
                    raise RuntimeError(f"import: {job.status} imported={job.rows_imported} failed={job.rows_failed}, "
                                       f"expected {good}/{bad}: {job.error}")
                print("csv_import: importing the same file again…", file=sys.stderr, flush=True)
                reimport_s, again = _import(admin, path)
                if (again.rows_imported, again.rows_unchanged) != (0, good):
                    raise RuntimeError(f"re-import changed rows: imported={again.rows_imported} "
                                       f"unchanged={again.rows_unchanged}, expected 0/{good}")
            connection.set_schema_to_public()
            copy_rows = _copy_rows(path)
            print(f"csv_import: raw COPY of the same {len(copy_rows):_} rows…", file=sys.stderr, flush=True)
            copy_s = _raw_copy(tenant.schema_name, copy_rows)
        finally:
            connection.set_schema_to_public()
            drop_tenants([slug])

    return [Result(
        name="csv_import",
        ratio=import_s / copy_s,
        measurements={
            "import_s": import_s,
            "copy_s": copy_s,
            "reimport_s": reimport_s,
            "rows": rows,
            "good_rows": good,
            "bad_rows": bad,
            "import_rows_per_s": rows / import_s,
            "copy_rows_per_s": len(copy_rows) / copy_s,
            "file_mb": round(size / 1e6, 1),
        },
        ratio_means="customer CSV import s (upload scan + chunked ingest) ÷ raw COPY s of the same rows (lower is better)",
    )]
