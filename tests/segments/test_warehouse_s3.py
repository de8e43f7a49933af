"""The warehouse export into an S3-compatible bucket through django-storages (the
production setting WAREHOUSE_S3_BUCKET), against moto's S3 server on loopback: files and
manifest land under the tenant's prefix, a rerun replaces an interrupted table's objects,
and the page downloads a file back from the bucket."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone as django_timezone
from django_tenants.utils import schema_context

from config.settings.stores import warehouse_storage as storage_setting
from segments.warehouse import services as warehouse
from tests.conftest import session
from tests.segments.test_warehouse_export import later, shop  # noqa: F401  (fixture)

MOTO = Path(sys.executable).with_name("moto_server")
BUCKET = "strata-exports"


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint, settings):
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=s3_endpoint, **credentials)
    client.create_bucket(Bucket=BUCKET)
    environ = {"WAREHOUSE_S3_BUCKET": BUCKET, "WAREHOUSE_S3_ENDPOINT_URL": s3_endpoint,
               "WAREHOUSE_S3_REGION": "us-east-1", "WAREHOUSE_S3_PREFIX": "strata",
               "WAREHOUSE_S3_ACCESS_KEY_ID": "testing", "WAREHOUSE_S3_SECRET_ACCESS_KEY": "testing"}
    settings.STORAGES = {**settings.STORAGES,
                         "warehouse": storage_setting(lambda name, default=None: environ.get(name, default),
                                                      settings.BASE_DIR)}
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])


def keys(client) -> list[str]:
    return sorted(item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                  for item in page.get("Contents", []))


def test_an_export_lands_in_the_bucket_and_resumes_there(shop, bucket, monkeypatch):  # noqa: F811
    tenant, tag, world = shop
    with schema_context(tenant.schema_name):
        export = warehouse.export_create(actor=world["admin"], tables=["customers", "events"], now=later())
        real = warehouse.write_table

        def dies_on_events(reader, table, **kwargs):
            if table.name == "events":
                kwargs["storage"].save(f"{kwargs['prefix']}/events/date=2026-11-02/part-00007.parquet",
                                       ContentFile(b"half a file"))
                raise SystemExit("worker killed")
            return real(reader, table, **kwargs)

        monkeypatch.setattr(warehouse, "write_table", dies_on_events)
        with pytest.raises(SystemExit):
            warehouse.export_run(export_id=export.pk, clock=django_timezone.now)
        monkeypatch.setattr(warehouse, "write_table", real)
        export = warehouse.export_run(export_id=export.pk, clock=django_timezone.now)
        assert export.status == "succeeded", export.error
        files = list(export.files.order_by("id").values_list("path", flat=True))
        first = export.files.order_by("id").first()

    stored = keys(bucket)
    prefix = f"strata/{tenant.schema_name}/exports/{export.pk:06d}/"
    assert all(key.startswith(prefix) for key in stored)
    assert sorted(f"strata/{path}" for path in files) + [f"{prefix}manifest.json"] == stored  # the stray is gone
    manifest = json.loads(bucket.get_object(Bucket=BUCKET, Key=f"{prefix}manifest.json")["Body"].read())
    assert [f["path"] for f in manifest["tables"]["events"]["files"]] == [p for p in files if "/events/" in p]
    body = bucket.get_object(Bucket=BUCKET, Key=f"strata/{files[0]}")["Body"].read()
    assert pq.read_table(io.BytesIO(body)).num_rows == first.rows

    download = session(tenant).get(f"/exports/{export.pk}/files/{first.pk}/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == body
