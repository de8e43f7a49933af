"""Fixtures the insights tests share."""

from datetime import datetime, timezone

import pytest
import time_machine

# The reports' tests build their worlds around this moment (a Monday).
REPORTS_NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture
def at_now():
    """Pages and the API read the wall clock: pinned to the reports' NOW."""
    with time_machine.travel(REPORTS_NOW, tick=False):
        yield
