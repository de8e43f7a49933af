"""Django's Redis cache, with one redis-py client per connection pool instead of one per
call.

TRICKY: django.core.cache.backends.redis builds a new `redis.Redis` for every operation,
and redis-py's constructor copies its ~170 response callbacks into a case-insensitive
dict each time: ~130 µs of CPU per cache call, a quarter of a cached membership lookup's
whole cost (bench/lookup.py). A client holds no state of its own beyond its pool, which is
thread-safe and re-creates its connections in a forked process, so one can be kept.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ReusedClients(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class ReusingRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ReusedClients
