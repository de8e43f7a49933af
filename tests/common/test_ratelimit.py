"""Fixed-window rate limits: parsing, counting per bucket and window, the wait until the
window ends, and passing requests when Redis cannot be reached."""

from __future__ import annotations

import uuid

import pytest

from common import ratelimit
from common.ratelimit import Limit


@pytest.mark.parametrize("spec, limit", [("600/m", Limit(600, 60)), (" 5 / s ", Limit(5, 1)), ("1/h", Limit(1, 3600))])
def test_specs_parse(spec, limit):
    assert Limit.parse(spec) == limit


@pytest.mark.parametrize("spec", ["", "10", "0/s", "-1/m", "5/d", "five/m", None])
def test_bad_specs_are_configuration_errors(spec):
    with pytest.raises(ValueError):
        Limit.parse(spec)


def test_a_bucket_is_counted_per_window_and_told_when_to_retry():
    bucket, limit = f"test-{uuid.uuid4().hex}", Limit(2, 60)
    start = 1_800_000_000.0  # a window boundary (divisible by 60)
    assert ratelimit.hit(bucket=bucket, limit=limit, now=start + 10) is None
    assert ratelimit.hit(bucket=bucket, limit=limit, now=start + 20) is None
    assert ratelimit.hit(bucket=bucket, limit=limit, now=start + 45.5) == 15  # until start + 60
    assert ratelimit.hit(bucket=f"{bucket}-other", limit=limit, now=start + 45.5) is None  # its own counter
    assert ratelimit.hit(bucket=bucket, limit=limit, now=start + 60) is None  # the next window


def test_requests_pass_when_the_counter_is_down(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(ratelimit, "_count", down)
    assert ratelimit.hit(bucket="any", limit=Limit(1, 1), now=1.0) is None
