"""No export carries a formula out (issue: hardening, finding 5): text a customer, a user or
an uploaded file put in — external ids, names, emails, campaign and segment labels, user
agents, uploaded header names — that starts like a formula (= + - @, tab, CR) is planted
where every CSV export of the product reads it, each export is downloaded as a user would,
and no cell of any of them starts like a formula, while the planted text is there,
neutralised. Generated: hypothesis picks the text."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import datetime, timezone

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from common.csv import FORMULA_STARTS
from customers.imports.services import import_run, import_start, import_upload
from customers.models import Customer
from segments import engine
from segments.models import Segment
from tests.conftest import membership_of, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
_examples = itertools.count()

formula = st.builds(lambda start, rest: start + rest, st.sampled_from(FORMULA_STARTS),
                    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=15))


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_no_export_starts_a_cell_like_a_formula(tenant, _media):
    admin = session(tenant)
    actor = membership_of(tenant, "admin@alpha.test")

    @settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(text=formula)
    def run(text):
        n = next(_examples)
        # A header name: one line, trimmed, and read as a name rather than a value.
        header = ("=" if text[0] in "\t\r" else text[0]) + f"col{n} " + " ".join(text[1:].split())
        header = header.strip()
        with schema_context(tenant.schema_name):
            customer = Customer.objects.create(external_id=f"{text}{n}", name=text, email=f"{n}{text}@x.test")
            segment = Segment.objects.create(key=f"export-{n}", name=text, kind="static")
            engine.members_add(segment=segment, customer_ids=[customer.pk], now=NOW)
            AuditEvent.objects.create(actor_kind="user", actor_label="admin@alpha.test", action="campaign.created",
                                      target_type="campaigns.campaign", target_id=str(n), target_label=text,
                                      user_agent=text, ip="10.0.0.2", at=NOW)
            job = import_upload(actor=actor, kind="customers", now=NOW, upload=SimpleUploadedFile(
                "h.csv", f'external_id,"{header.replace(chr(34), chr(34) * 2)}"\nu{n},not-an-email\n'.encode(),
                "text/csv"))
            job = import_start(actor=actor, job=job, mapping={"external_id": "external_id", header: "trait:email"},
                               now=NOW)
            job = import_run(job_id=job.pk, clock=lambda: NOW)
        exports = {
            "segment members": rows_of(admin.get(f"/api/v1/segments/export-{n}/members/export/")),
            "audit log": rows_of(admin.get("/settings/audit/export.csv", {"since": "2026-11-23", "until": "2026-11-23"})),
            "import errors (page)": rows_of(admin.get(f"/customers/imports/{job.pk}/errors.csv")),
            "import errors (API)": rows_of(admin.get(f"/api/v1/imports/{job.pk}/errors.csv")),
        }
        for name, rows in exports.items():
            cells = [cell for row in rows for cell in row]
            assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)], name
            planted = header if name.startswith("import") else text
            assert "'" + planted in cells or any(cell.startswith("'" + planted) for cell in cells), (name, planted)

    run()
