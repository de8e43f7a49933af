"""The Redis cache keeps one redis-py client per pool (common/cache.py) and still works as
Django's: values, many at once, the tenant's key function."""

from django.core.cache import cache


def test_one_client_is_kept_and_the_cache_works(db):
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    cache.set("reused-client", {"a": 1}, 30)
    cache.set_many({"reused-b": 2, "reused-c": [3]}, 30)
    assert cache.get("reused-client") == {"a": 1}
    assert cache.get_many(["reused-b", "reused-c", "reused-none"]) == {"reused-b": 2, "reused-c": [3]}
    assert cache.delete("reused-client") and cache.get("reused-client") is None
