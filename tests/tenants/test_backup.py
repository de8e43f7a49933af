"""tenant_backup / tenant_restore: a pg_dump of one tenant's schema restored as a new tenant
(real PostgreSQL, committed data: pg_dump and psql are other connections)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from customers.models import Customer, Event
from segments.models import Segment
from tenants.backup import BackupError, PgTools, libpq_env, pg_tools, rewrite_dump
from tenants.models import Department, Domain, Tenant, TenantMembership, User
from tenants.services import membership_set, user_get_or_create

TRICKY = "t_alpha.customers_customer\\. 'quoted' \"dq\" back\\slash\ttab ü \\. COPY x FROM stdin;"
PRO = {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}


# ------------------------------------------------------------------------------ helpers


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def table_counts(schema: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                       "AND table_type = 'BASE TABLE'", [schema])
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def forget(slug: str) -> None:
    """Remove a tenant a test restored: its public rows, then its schema."""
    connection.set_schema_to_public()
    TenantMembership.objects.filter(tenant__slug=slug).delete()  # role is PROTECTed
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is not None:
        tenant.delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "t_{slug.replace("-", "_")}" CASCADE')


def restore(path: Path, slug: str, *flags: str, **options: str) -> str:
    out = StringIO()
    arguments = [item for key, value in options.items() for item in (f"--{key}", value)]
    call_command("tenant_restore", "--from", str(path), "--slug", slug, *flags, *arguments, stdout=out)
    return out.getvalue()


def backup(slug: str, path: Path) -> str:
    out = StringIO()
    call_command("tenant_backup", "--tenant", slug, "--out", str(path), stdout=out)
    return out.getvalue()


def rebuilt(source: Path, target: Path, *, manifest=None, dump: tuple[str, bytes] | None = None,
            drop: tuple[str, ...] = ()) -> Path:
    """A copy of a backup tar with its manifest or dump replaced, or members left out."""
    with tarfile.open(source) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    if manifest is not None:
        members["tenant.json"] = json.dumps(manifest).encode()
    if dump is not None:
        members.pop("schema.sql.gz")
        members[dump[0]] = dump[1]
    with tarfile.open(target, "w") as tar:
        for name, data in members.items():
            if name not in drop:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return target


def manifest_of(path: Path) -> dict:
    with tarfile.open(path) as tar:
        return json.loads(tar.extractfile("tenant.json").read())


def sql_of(path: Path) -> bytes:
    with tarfile.open(path) as tar:
        return gzip.decompress(tar.extractfile("schema.sql.gz").read())


@pytest.fixture
def restored_slugs(committed_db):
    """Slugs a test restores into, forgotten afterwards whatever happened."""
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        forget(slug)


@pytest.fixture(scope="module")
def alpha_backup(django_db_setup, django_db_blocker, tmp_path_factory) -> Path:
    """A backup of alpha as the session made it, for the refusal tests."""
    path = tmp_path_factory.mktemp("backup") / "alpha.tar"
    with django_db_blocker.unblock():
        backup("alpha", path)
    return path


def nothing_created(slug: str, tenants_before: int) -> bool:
    return (not Tenant.objects.filter(slug=slug).exists() and Tenant.objects.count() == tenants_before
            and not schema_exists("t_" + slug.replace("-", "_")))


# ------------------------------------------------------------------ the rewrite, no DB


HANDMADE = b"""--
-- PostgreSQL database dump
--
SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);
SET search_path = t_alpha, pg_catalog;
CREATE SCHEMA t_alpha;
COMMENT ON SCHEMA t_alpha IS 'x';
CREATE TABLE t_alpha.customers_customer (
    id bigint DEFAULT nextval('t_alpha.customers_customer_id_seq'::regclass) NOT NULL,
    note text DEFAULT 'xt_alpha.y'::text
);
CREATE TABLE "t_alpha".odd (id int REFERENCES t_alpha_other.x(id));
COPY t_alpha.customers_customer (id, note) FROM stdin;
1\tt_alpha.customers_customer says hi
2\tSET search_path = t_alpha, pg_catalog;
3\tCREATE SCHEMA t_alpha;
\\.
SELECT pg_catalog.setval('t_alpha.customers_customer_id_seq', 3, true);
CREATE TRIGGER t AFTER DELETE ON t_alpha.customers_customer EXECUTE FUNCTION t_alpha.forget();
--
-- PostgreSQL database dump complete
--
"""


def test_the_rewrite_renames_the_schema_in_statements_and_never_in_copy_data():
    """SQL lines get the new schema; COPY rows pass through byte for byte."""
    out = b"".join(rewrite_dump(io.BytesIO(HANDMADE), source="t_alpha", target="t_alpha_copy")).decode()
    lines = out.splitlines()
    assert "CREATE SCHEMA t_alpha_copy;" in lines
    assert "COMMENT ON SCHEMA t_alpha_copy IS 'x';" in lines
    assert "SET search_path = t_alpha_copy, pg_catalog;" in lines
    assert "CREATE TABLE t_alpha_copy.customers_customer (" in lines
    assert "    id bigint DEFAULT nextval('t_alpha_copy.customers_customer_id_seq'::regclass) NOT NULL," in lines
    assert "    note text DEFAULT 'xt_alpha.y'::text" in lines  # not a whole identifier
    assert 'CREATE TABLE "t_alpha_copy".odd (id int REFERENCES t_alpha_other.x(id));' in lines  # another schema
    assert "SELECT pg_catalog.setval('t_alpha_copy.customers_customer_id_seq', 3, true);" in lines
    assert ("CREATE TRIGGER t AFTER DELETE ON t_alpha_copy.customers_customer "
            "EXECUTE FUNCTION t_alpha_copy.forget();") in lines
    # The COPY block, untouched, and the block ends at `\.`.
    start = HANDMADE.index(b"1\t")
    end = HANDMADE.index(b"\\.\n") + 3
    assert HANDMADE[start:end] in out.encode()
    assert re.findall(r"(?<![\w.])t_alpha\.", out) == ["t_alpha."]  # only the COPY row's own text


def test_the_rewrite_keeps_every_byte_when_the_name_does_not_change():
    assert b"".join(rewrite_dump(io.BytesIO(HANDMADE), source="t_alpha", target="t_alpha")) == HANDMADE


@pytest.mark.parametrize("name", ["T_alpha", "t-alpha", "t_alpha;drop", "", "a" * 64, 't"x'])
def test_the_rewrite_refuses_a_name_that_is_not_a_plain_identifier(name):
    with pytest.raises(BackupError, match="plain lower-case identifier"):
        list(rewrite_dump([b"x\n"], source=name, target="t_ok"))
    with pytest.raises(BackupError, match="plain lower-case identifier"):
        list(rewrite_dump([b"x\n"], source="t_ok", target=name))


def test_the_database_settings_reach_libpq_through_the_environment():
    """The embedded server's URL keeps its socket directory in OPTIONS, not HOST; the
    password travels in PGPASSWORD, never on a command line."""
    env = libpq_env(settings_dict={"NAME": "strata", "USER": "postgres", "PASSWORD": "s3cret", "HOST": "",
                                   "PORT": "", "OPTIONS": {"host": "/run/strata/pg", "sslmode": "disable"}})
    assert (env["PGHOST"], env["PGDATABASE"], env["PGUSER"]) == ("/run/strata/pg", "strata", "postgres")
    assert (env["PGPASSWORD"], env["PGSSLMODE"]) == ("s3cret", "disable")
    env = libpq_env(settings_dict={"NAME": "strata", "USER": "u", "PASSWORD": "", "HOST": "127.0.0.1",
                                   "PORT": 5432, "OPTIONS": {}})
    assert (env["PGHOST"], env["PGPORT"]) == ("127.0.0.1", "5432")


def fake_tools(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True)
    for tool in ("pg_dump", "psql"):
        script = directory / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    return directory


def test_the_client_tools_match_the_server_major_or_are_the_closest_newer(tmp_path, monkeypatch):
    """pg_dump may not be older than the server; a newer one writes SQL an older server may
    refuse, so the same major wins."""
    from tenants.pgdump import postgres as module

    v17, v16, v15 = (fake_tools(tmp_path / v, f"{v}.1") for v in ("17", "16", "15"))
    monkeypatch.setattr(module, "_candidate_dirs", lambda major: [v17, v16, v15])
    assert pg_tools(server_version=160004).pg_dump == v16 / "pg_dump"
    assert pg_tools(server_version=150010).psql == v15 / "psql"
    monkeypatch.setattr(module, "_candidate_dirs", lambda major: [v17, v15])
    assert pg_tools(server_version=160004).major == 17
    with pytest.raises(BackupError, match="no pg_dump/psql of PostgreSQL 18 or newer"):
        pg_tools(server_version=180000)


# ------------------------------------------------------------------ backup and restore


def test_a_backup_restores_as_a_new_tenant_with_the_same_data(alpha_committed, restored_slugs, tmp_path):
    """alpha's backup restored as alpha-copy: the same rows, sequences that continue, the
    memberships of users that exist, departments of its own, and alpha untouched."""
    alpha, tag = alpha_committed
    marketing = Department.objects.get(tenant=alpha, name="Marketing")
    member = user_get_or_create(email=f"{tag}-marketer@alpha.test", password="x" * 12)
    gone = user_get_or_create(email=f"{tag}-gone@alpha.test", password="x" * 12)
    membership_set(user=member, tenant=alpha, role="marketer", department=marketing)
    membership_set(user=gone, tenant=alpha, role="viewer")
    slug = f"copy-{tag[2:]}"
    restored_slugs.append(slug)
    try:
        with schema_context(alpha.schema_name):
            customers = [Customer.objects.create(external_id=f"{tag}-c{i}", plan="pro" if i % 2 else "free",
                                                 traits={"note": TRICKY, "i": i}) for i in range(5)]
            for customer in customers:
                for name in ("signup", "purchase"):
                    Event.objects.create(customer=customer, name=f"{tag}-{name}", timestamp="2026-06-01T12:00:00Z",
                                         properties={"schema": "t_alpha.customers_customer"})
            Segment.objects.create(key=f"{tag}-pro", name="Pro", definition=PRO, definition_version=1,
                                   department_id=marketing.pk)
        alpha_counts = table_counts(alpha.schema_name)
        path = tmp_path / "alpha.tar"

        said = backup("alpha", path)
        assert f"backed up alpha (schema {alpha.schema_name}) to {path}" in said and " MB in " in said
        manifest = manifest_of(path)
        assert manifest["tenant"]["schema_name"] == "t_alpha" and manifest["tenant"]["status"] == "active"
        assert "0001_initial" in manifest["migrations"]["customers"]
        assert {"email": f"{tag}-marketer@alpha.test", "role": "marketer", "role_name": "Marketer",
                "department": "Marketing"} in manifest["memberships"]
        assert path.stat().st_mode & 0o077 == 0  # customer data: the owner's only
        gone.delete()  # an account that no longer exists when the backup is restored

        said = restore(path, slug)
        copy = Tenant.objects.get(slug=slug)
        schema = copy.schema_name
        assert schema == f"t_copy_{tag[2:]}" and copy.name == "Alpha Co" and copy.status == "active"
        assert f"restored alpha as {slug} (schema {schema}, active)" in said
        assert f"skipped (no such user or role here): {tag}-gone@alpha.test" in said

        assert table_counts(schema) == alpha_counts
        assert table_counts(alpha.schema_name) == alpha_counts  # alpha untouched
        with schema_context(schema):
            copied = {c.external_id: c for c in Customer.objects.filter(external_id__startswith=tag)}
            assert sorted(copied) == [f"{tag}-c{i}" for i in range(5)]
            assert all(c.traits == {"note": TRICKY, "i": int(x[-1])} for x, c in copied.items())
            assert {c.pk for c in copied.values()} == {c.pk for c in customers}
            assert set(Event.objects.filter(customer__external_id__startswith=tag).values_list("name", flat=True)) == {
                f"{tag}-signup", f"{tag}-purchase"}
            assert Event.objects.filter(properties__schema="t_alpha.customers_customer").count() == 10
            segment = Segment.objects.get(key=f"{tag}-pro")
            assert segment.definition == PRO
            copy_marketing = Department.objects.get(tenant=copy, name="Marketing")
            assert segment.department_id == copy_marketing.pk != marketing.pk  # its own department
            new = Customer.objects.create(external_id=f"{tag}-new")  # the sequence continues
            assert new.pk > max(c.pk for c in customers)
        with schema_context(alpha.schema_name):
            assert Customer.objects.filter(external_id__startswith=tag).count() == 5
            assert Segment.objects.get(key=f"{tag}-pro").department_id == marketing.pk
            assert Customer.objects.get(external_id=f"{tag}-c1").traits["note"] == TRICKY

        roles = dict(TenantMembership.objects.filter(tenant=copy).values_list("user__email", "role__key"))
        # alpha's seats (other tests may have left committed members) but the deleted account's.
        expected = dict(TenantMembership.objects.filter(tenant=alpha).values_list("user__email", "role__key"))
        assert roles == expected and roles["admin@alpha.test"] == "admin"
        assert roles[f"{tag}-marketer@alpha.test"] == "marketer" and f"{tag}-gone@alpha.test" not in roles
        assert TenantMembership.objects.get(tenant=copy, user=member).department == copy_marketing
        assert Domain.objects.get(tenant=copy).domain == f"{slug}.localhost"
        assert list(Domain.objects.filter(tenant=alpha).values_list("domain", flat=True)) == ["alpha.localhost"]

        client = Client(HTTP_HOST=f"{slug}.localhost")
        assert client.get("/healthz").status_code in (200, 503)
        response = client.get("/")
        assert response.status_code == 302 and "login" in response["Location"]
        client.force_login(member)
        assert client.get("/").status_code == 200
    finally:
        User.objects.filter(email__startswith=tag).delete()


def test_a_restore_can_start_suspended(alpha_backup, restored_slugs):
    """--suspended: a copy that serves no pages and gets no scheduled work (no double sends)."""
    restored_slugs.append("alpha-held")
    restore(alpha_backup, "alpha-held", "--suspended", name="Alpha (held)", domain="held-alpha.localhost")
    copy = Tenant.objects.get(slug="alpha-held")
    assert (copy.name, copy.status) == ("Alpha (held)", "suspended")
    assert Domain.objects.get(tenant=copy).domain == "held-alpha.localhost"
    assert Client(HTTP_HOST="held-alpha.localhost").get("/").status_code == 403


def test_an_older_backup_is_migrated_forward(alpha_backup, restored_slugs, tmp_path):
    """A backup taken before a migration existed gets it applied by the restore."""
    sql = sql_of(alpha_backup)
    applied = [line for line in sql.split(b"\n") if line.split(b"\t")[1:3] == [b"apikeys", b"0008_first_lookup_key"]]
    assert len(applied) == 1  # a row of django_migrations' COPY block
    older = sql.replace(applied[0] + b"\n", b"")
    manifest = manifest_of(alpha_backup)
    manifest["migrations"]["apikeys"].remove("0008_first_lookup_key")
    manifest["dump"].update(bytes=len(older), sha256=hashlib.sha256(older).hexdigest())
    path = rebuilt(alpha_backup, tmp_path / "older.tar", manifest=manifest,
                   dump=("schema.sql.gz", gzip.compress(older)))
    restored_slugs.append("alpha-older")
    restore(path, "alpha-older")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t_alpha_older.django_migrations WHERE app = 'apikeys' "
                       "AND name = '0008_first_lookup_key'")
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT count(*) FROM t_alpha_older.apikeys_lookupkey WHERE revoked_at IS NULL")
        assert cursor.fetchone()[0] == 1  # the migration found alpha's key and added none


def test_a_failed_pg_dump_leaves_no_file(committed_db, tmp_path, monkeypatch):
    from tenants.backup import archive

    failing = tmp_path / "bin" / "pg_dump"
    failing.parent.mkdir()
    failing.write_text("#!/bin/sh\necho 'pg_dump: error: server closed the connection' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(archive, "pg_tools", lambda **kwargs: PgTools(pg_dump=failing, psql=failing, major=99))
    out = tmp_path / "out" / "alpha.tar"
    with pytest.raises(CommandError, match="pg_dump failed: pg_dump: error: server closed the connection"):
        backup("alpha", out)
    assert list(out.parent.iterdir()) == []  # no tar, no .part, no temporary dump


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("slug", "message"), [
    ("beta", "already taken"),
    ("Bad_Slug", "lower-case"),
    ("www", "reserved"),
])
def test_a_taken_or_invalid_slug_is_refused(alpha_backup, committed_db, slug, message):
    before = Tenant.objects.count()
    schemas = table_counts("t_beta")
    with pytest.raises(CommandError, match=message):
        restore(alpha_backup, slug)
    assert Tenant.objects.count() == before and table_counts("t_beta") == schemas


def test_a_missing_or_corrupt_tar_is_refused(alpha_backup, restored_slugs, tmp_path):
    restored_slugs += ["from-nothing", "from-corrupt"]  # forgotten should a refusal ever fail
    before = Tenant.objects.count()
    with pytest.raises(CommandError, match="no such file"):
        restore(tmp_path / "nope.tar", "from-nothing")
    corrupt = tmp_path / "corrupt.tar"
    corrupt.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(CommandError, match="not a readable tar file"):
        restore(corrupt, "from-corrupt")
    assert nothing_created("from-nothing", before) and nothing_created("from-corrupt", before)


def test_a_tar_without_tenant_json_is_refused(alpha_backup, restored_slugs, tmp_path):
    restored_slugs += ["from-bare", "from-other"]
    before = Tenant.objects.count()
    bare = rebuilt(alpha_backup, tmp_path / "bare.tar", drop=("tenant.json",))
    with pytest.raises(CommandError, match="not a Strata backup \\(no tenant.json inside\\)"):
        restore(bare, "from-bare")
    other = rebuilt(alpha_backup, tmp_path / "other.tar", manifest={"format": "something-else"})
    with pytest.raises(CommandError, match="not a Strata backup"):
        restore(other, "from-other")
    assert nothing_created("from-bare", before) and nothing_created("from-other", before)


def test_a_dump_of_another_schema_than_tenant_json_names_is_refused(alpha_backup, restored_slugs, tmp_path):
    restored_slugs.append("from-mismatch")
    before = Tenant.objects.count()
    manifest = manifest_of(alpha_backup)
    manifest["tenant"]["schema_name"] = "t_beta"
    mismatched = rebuilt(alpha_backup, tmp_path / "mismatched.tar", manifest=manifest)
    with pytest.raises(CommandError, match="the dump creates schema 't_alpha' but tenant.json names 't_beta'"):
        restore(mismatched, "from-mismatch")
    assert nothing_created("from-mismatch", before)
    assert table_counts("t_beta")  # beta untouched


def test_a_truncated_dump_leaves_nothing_half_restored(alpha_backup, restored_slugs, tmp_path):
    """Cut after the first tables were loaded: psql must not commit what it had read (it
    would at end of input), so nothing of the new schema remains."""
    sql = sql_of(alpha_backup)
    half = sql[:sql.index(b"\n", sql.index(b"COPY ") + 1) + 1]  # ends inside the first COPY block
    manifest = manifest_of(alpha_backup)
    manifest["dump"].update(name="schema.sql", bytes=len(half), sha256=hashlib.sha256(half).hexdigest())
    restored_slugs.append("from-truncated")
    truncated = rebuilt(alpha_backup, tmp_path / "truncated.tar", manifest=manifest, dump=("schema.sql", half))
    before = Tenant.objects.count()
    with pytest.raises(CommandError, match="incomplete or damaged"):
        restore(truncated, "from-truncated")
    assert nothing_created("from-truncated", before)


def test_a_damaged_dump_is_refused_by_its_checksum(alpha_backup, restored_slugs, tmp_path):
    sql = sql_of(alpha_backup).replace(b"CREATE TABLE", b"CREATE  TABLE", 1)
    restored_slugs.append("from-damaged")
    damaged = rebuilt(alpha_backup, tmp_path / "damaged.tar", dump=("schema.sql.gz", gzip.compress(sql)))
    before = Tenant.objects.count()
    with pytest.raises(CommandError, match="incomplete or damaged"):
        restore(damaged, "from-damaged")
    assert nothing_created("from-damaged", before)


def test_a_statement_psql_refuses_leaves_nothing(alpha_backup, restored_slugs, tmp_path):
    """The dump loads in one transaction: an error near its end undoes every table before it."""
    sql = sql_of(alpha_backup)
    end = sql.index(b"-- PostgreSQL database dump complete")
    broken = sql[:end] + b"SELECT no_such_function();\n" + sql[end:]
    manifest = manifest_of(alpha_backup)
    manifest["dump"].update(bytes=len(broken), sha256=hashlib.sha256(broken).hexdigest())
    path = rebuilt(alpha_backup, tmp_path / "broken.tar", manifest=manifest,
                   dump=("schema.sql.gz", gzip.compress(broken)))
    restored_slugs.append("from-psql-error")
    before = Tenant.objects.count()
    with pytest.raises(CommandError, match="psql could not load the dump .*no_such_function"):
        restore(path, "from-psql-error")
    assert nothing_created("from-psql-error", before)


def test_a_failure_after_the_load_drops_the_loaded_schema(alpha_backup, restored_slugs, monkeypatch):
    """If creating the public rows fails, the schema psql loaded is dropped again."""
    from tenants.backup import restore as module

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "memberships_restore", broken)
    restored_slugs.append("from-broken")
    before = Tenant.objects.count()
    with pytest.raises(RuntimeError, match="boom"):
        restore(alpha_backup, "from-broken")
    assert nothing_created("from-broken", before)
    assert not Department.objects.filter(tenant__slug="from-broken").exists()


def test_backing_up_an_unknown_tenant_is_refused(committed_db, tmp_path):
    with pytest.raises(CommandError, match="no tenant with slug"):
        backup("no-such-tenant", tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()
