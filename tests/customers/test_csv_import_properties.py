"""CSV import with a hypothesis-generated mix of good and bad rows: every good row lands
with its values, every bad row is reported (by its spreadsheet row number) and nothing of
it is stored. Cells carry commas, quotes, line breaks and non-ASCII text, and the chunk
size is small so chunk boundaries fall anywhere."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import datetime, timezone

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.imports.models import ImportRowError
from customers.imports.services import import_run, import_start, import_upload
from customers.models import Customer, TraitDefinition

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
HEADER = ["external_id", "email", "company_size", "email_opt_in", "signed_up_at", "plan", "visits"]
MAPPING = {"external_id": "external_id", "email": "trait:email", "company_size": "trait:company_size",
           "email_opt_in": "trait:email_opt_in", "signed_up_at": "trait:signed_up_at", "plan": "trait:plan",
           "visits": "trait:visits"}
BAD_KINDS = ("no_id", "email", "size", "opt_in", "date", "plan_too_long", "visits", "extra_cell", "missing_cell")
_examples = itertools.count()

text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
               | st.sampled_from([",", '"', "\n", ";", "|", "\r", " "]), max_size=30)
good_row = st.fixed_dictionaries({
    "email": st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.test", fullmatch=True),
    "company_size": st.integers(min_value=0, max_value=10**6),
    "email_opt_in": st.sampled_from([("yes", True), ("no", False), ("TRUE", True), ("0", False), ("", None)]),
    "signed_up_at": st.dates(min_value=datetime(1990, 1, 1).date(), max_value=datetime(2030, 1, 1).date()),
    "plan": text.filter(lambda t: len(t.strip()) <= 64),
    "visits": st.one_of(st.integers(-10**9, 10**9), st.floats(allow_nan=False, allow_infinity=False, width=32)),
})
rows = st.lists(st.one_of(good_row.map(lambda r: ("good", r)),
                          st.tuples(st.sampled_from(BAD_KINDS), good_row)), min_size=1, max_size=40)


@pytest.fixture
def importer(alpha_admin, tmp_path_factory):
    from django.conf import settings as django_settings

    previous = django_settings.MEDIA_ROOT
    django_settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))
    TraitDefinition.objects.get_or_create(key="visits", defaults={"type": "number", "category": "behavioral"})
    yield alpha_admin
    django_settings.MEDIA_ROOT = previous


def _cells(external_id: str, kind: str, row: dict) -> list[str]:
    cells = {
        "external_id": external_id, "email": row["email"], "company_size": str(row["company_size"]),
        "email_opt_in": row["email_opt_in"][0], "signed_up_at": row["signed_up_at"].isoformat(), "plan": row["plan"],
        "visits": repr(row["visits"]),
    }
    if kind == "no_id":
        cells["external_id"] = "  "
    elif kind == "email":
        cells["email"] = row["email"].replace("@", " at ")
    elif kind == "size":
        cells["company_size"] = f"{row['company_size']} people"
    elif kind == "opt_in":
        cells["email_opt_in"] = "maybe"
    elif kind == "date":
        cells["signed_up_at"] = "next tuesday"
    elif kind == "plan_too_long":
        cells["plan"] = "p" * 65
    elif kind == "visits":
        cells["visits"] = "many"
    out = [cells[name] for name in HEADER]
    if kind == "extra_cell":
        out.append("surplus")
    elif kind == "missing_cell":
        out.pop()
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rows=rows, chunk_rows=st.integers(min_value=1, max_value=9))
def test_every_good_row_lands_and_every_bad_row_is_reported(importer, rows, chunk_rows):
    prefix = f"h{next(_examples)}"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    expected_good, expected_bad = {}, set()
    for i, (kind, row) in enumerate(rows):
        external_id = f"{prefix}-{i}"
        writer.writerow(_cells(external_id, kind, row))
        if kind == "good":
            expected_good[external_id] = row
        else:
            expected_bad.add(i + 2)  # the header is row 1
    upload = SimpleUploadedFile("mix.csv", buffer.getvalue().encode(), "text/csv")
    job = import_upload(actor=importer, kind="customers", upload=upload, now=NOW)
    job = import_start(actor=importer, job=job, mapping=MAPPING, now=NOW)
    job = import_run(job_id=job.pk, clock=lambda: NOW, chunk_rows=chunk_rows)

    reported = set(ImportRowError.objects.filter(job=job).values_list("row", flat=True))
    assert reported == expected_bad
    assert (job.rows_total, job.rows_imported, job.rows_failed) == (len(rows), len(expected_good), len(expected_bad))
    stored = {c.external_id: c for c in Customer.objects.filter(external_id__startswith=f"{prefix}-")}
    assert set(stored) == set(expected_good)
    for external_id, row in expected_good.items():
        customer = stored[external_id]
        assert customer.email == (row["email"] or None)  # an empty cell is "not provided"
        assert customer.company_size == row["company_size"]
        assert customer.email_opt_in is row["email_opt_in"][1]
        assert customer.signed_up_at.date() == row["signed_up_at"]
        assert customer.plan == (row["plan"].strip() or None)
        assert customer.traits["visits"] == pytest.approx(float(repr(row["visits"])))
