"""Read replicas for previews and reports, against a real one: a primary and its streaming
replica are started from the machine's PostgreSQL binaries, and tests/replica runs in a
second pytest process configured with both (DATABASE_URL, DATABASE_REPLICA_URL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.replica.cluster import binaries, start_pair

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(binaries() is None, reason="no PostgreSQL binaries with pg_basebackup on this machine")
def test_the_replica_suite_passes_against_a_streaming_replica():
    base = Path(tempfile.mkdtemp(prefix="strata-replica-"))
    pair = start_pair(base)
    try:
        env = {**os.environ, "DATABASE_URL": pair.primary.url, "DATABASE_REPLICA_URL": pair.replica.url,
               "STRATA_TEST_TAG": f"replica{os.getpid()}"}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/replica"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        report = done.stdout[-6000:] + done.stderr[-3000:]
        assert done.returncode == 0, report
        assert " passed" in done.stdout and "skipped" not in done.stdout and "deselected" not in done.stdout, report
    finally:
        pair.stop()
        shutil.rmtree(base, ignore_errors=True)
