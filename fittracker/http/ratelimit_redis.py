"""Rate-limit counters in Redis, shared by every router and worker of a deployment.

One Lua script does the whole hit atomically: it reads the Redis server's clock, derives
the fixed window (``start = now - now % window``), ``INCR``s the key of that window and, on
the window's first hit, sets it to expire just after the window ends. Using the server's
clock rather than each host's means every router agrees on where a window starts.

If Redis cannot be reached the store does not fail requests: it logs one warning per
outage, answers from local in-process counters (so each process enforces the limit on its
own share of the traffic), and tries Redis again at most once per ``retry_interval``.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from fittracker.http.ratelimit import MemoryCounterStore
from fittracker.redis_support import REDIS_DOWN, Outage, client_for

log = logging.getLogger("fittracker.ratelimit")

# KEYS[1]: the counter's base key; ARGV[1]: the window in seconds.
# Returns {hits in the current window, epoch second the window ends}.
# The per-window key is derived here because only the script knows the server's time; that
# is fine on a single Redis (or a primary with replicas), not on Redis Cluster.
_HIT_SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
local window = tonumber(ARGV[1])
local start = now - (now % window)
local key = KEYS[1] .. ':' .. start
local hits = redis.call('INCR', key)
if hits == 1 then
    redis.call('EXPIRE', key, start + window - now + 1)
end
return {hits, start + window}
"""

# Counting must never stall a request for long: a Redis that does not answer in this many
# seconds counts as down.
_DEFAULT_TIMEOUT = 0.5


class RedisCounterStore:
    """:class:`~fittracker.http.ratelimit.CounterStore` on Redis, with a local fallback."""

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        fallback: MemoryCounterStore | None = None,
        prefix: str = "fittracker:rl:",
        retry_interval: float = 1.0,
        timeout: float = _DEFAULT_TIMEOUT,
    ) -> None:
        """``redis`` is a URL (the store owns the client) or a client (the caller closes it).

        ``fallback`` counts while Redis is unreachable; by default a fresh in-process store.
        """
        self._redis, self._owns_client = client_for(redis, timeout=timeout)
        self.fallback = fallback if fallback is not None else MemoryCounterStore()
        self._prefix = prefix
        self._script = self._redis.register_script(_HIT_SCRIPT)
        self._outage = Outage("rate limiter", log, retry_interval=retry_interval)

    @property
    def degraded(self) -> bool:
        """True while counting locally because Redis is unreachable."""
        return self._outage.down

    async def hit(self, key: str, window_s: int) -> tuple[int, float]:
        if window_s < 1:
            raise ValueError(f"window_s must be at least 1, got {window_s!r}")
        if self._outage.should_try():
            try:
                hits, end = await self._script(keys=[self._prefix + key], args=[int(window_s)])
            except REDIS_DOWN as exc:
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                return int(hits), float(end)
        return await self.fallback.hit(key, window_s)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
