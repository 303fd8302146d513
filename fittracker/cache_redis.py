"""The Redis cache backend (kept apart so that Redis is imported only where it is used)."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from fittracker.cache import check_ttl
from fittracker.redis_support import REDIS_DOWN, Outage, client_for

log = logging.getLogger("fittracker.cache")


class RedisCache:
    """A cache in Redis, shared by every process; keys live under ``prefix``."""

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        prefix: str = "fittracker:cache:",
        retry_interval: float = 1.0,
        timeout: float = 0.5,
    ) -> None:
        """``redis`` is a URL (the cache owns the client) or a client (the caller closes it)."""
        self._redis, self._owns_client = client_for(redis, timeout=timeout)
        self.prefix = prefix
        self._outage = Outage("cache", log, retry_interval=retry_interval)

    async def get(self, key: str) -> bytes | None:
        if not self._outage.should_try():
            return None
        try:
            value = await self._redis.get(self.prefix + key)
        except REDIS_DOWN as exc:
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        check_ttl(ttl_s)
        if not self._outage.should_try():
            return
        try:
            await self._redis.set(self.prefix + key, value, px=max(1, round(ttl_s * 1000)))
        except REDIS_DOWN as exc:
            self._outage.failed(exc)
        else:
            self._outage.recovered()

    async def delete(self, key: str) -> None:
        # Tried even during an outage: a delete is an invalidation, worth the wait.
        try:
            await self._redis.delete(self.prefix + key)
        except REDIS_DOWN as exc:
            self._outage.failed(exc)
        else:
            self._outage.recovered()

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
