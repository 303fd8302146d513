"""The cache port: bytes by key with a time to live, for hot reads.

Plug-ins reach it as ``ctx.cache`` and must treat it as a cache: any value may be missing
at any time, and a value may be stale until its TTL runs out (each process of a split
deployment has its own :class:`MemoryCache`; :class:`RedisCache` is shared by all).
Keys are plain strings; a plug-in should start its keys with its own name.

Backends:

- :class:`MemoryCache`: in-process, least recently used entries evicted past ``max_entries``.
- :class:`RedisCache`: Redis ``GET``/``SET PX``/``DEL`` under a key prefix. An unreachable
  Redis degrades to a cache that misses (logged once per outage), never to failed requests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

BACKENDS = ("memory", "redis")


class Cache(Protocol):
    """Bytes by key, each with a time to live."""

    async def get(self, key: str) -> bytes | None:
        """The value, or ``None`` if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds (> 0)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error if absent)."""
        ...

    async def close(self) -> None:
        """Release connections; the core calls it on shutdown."""
        ...


def check_ttl(ttl_s: float) -> None:
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")


class MemoryCache:
    """An LRU cache with per-entry TTL, bounded to ``max_entries`` entries."""

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, value)

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        check_ttl(ttl_s)
        self._entries[key] = (self._clock() + ttl_s, bytes(value))
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._evict()

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def close(self) -> None:
        self._entries.clear()

    def _evict(self) -> None:
        # Expired entries go first, so a burst of short-lived keys does not push out live ones.
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def open_cache(backend: str, *, max_entries: int = 10_000, redis_url: str = "") -> Cache:
    """Build the cache named by ``backend``: ``"memory"`` or ``"redis"`` (needs ``redis_url``)."""
    if backend == "memory":
        return MemoryCache(max_entries)
    if backend == "redis":
        if not redis_url:
            raise ValueError("the redis cache backend needs a redis_url")
        from fittracker.cache_redis import RedisCache  # redis is imported only when used

        return RedisCache(redis_url)
    raise ValueError(f"unknown cache backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
