import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app


@pytest.fixture
def celery_worker(committed_db):
    """A real Celery worker thread consuming the test queue on the real Redis broker."""
    app.control.purge()  # messages a crashed earlier run may have left
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING") as worker:
        yield worker
