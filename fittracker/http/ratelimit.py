"""Rate limiting: fixed windows per client, overall and per plug-in, on a counter port.

The client is the user id when a valid token came, else the IP (trusted-proxy aware). The
counter store is a port: in-process here; a Redis store shares counts between processes.
Responses carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``; a
refused request gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class CounterStore(Protocol):
    """Counts hits per key in fixed windows."""

    async def hit(self, key: str, window_s: int) -> tuple[int, float]:
        """Count one hit; return (hits in the current window, epoch second the window ends)."""
        ...


class MemoryCounterStore:
    """Counters in this process only (single-process deployments, and fallback)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (window end, hits)

    async def hit(self, key: str, window_s: int) -> tuple[int, float]:
        now = self._clock()
        end, hits = self._counts.get(key, (0.0, 0))
        if end <= now:
            end, hits = (math.floor(now / window_s) + 1) * window_s, 0
            if len(self._counts) >= self._max_keys:
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        hits += 1
        self._counts[key] = (end, hits)
        return hits, end


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the tightest window resets

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.reset_s))
        return out


class RateLimiter:
    """Applies the overall limit and, for plug-in routes, the per-plug-in limit."""

    def __init__(
        self,
        store: CounterStore,
        *,
        window_s: int,
        global_limit: int,
        plugin_limit: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window_s = window_s
        self.global_limit = global_limit
        self.plugin_limit = plugin_limit
        self._clock = clock

    async def check(self, client: str, plugin: str | None) -> tuple[Verdict, str]:
        """The verdict for one request, and which scope decided it ("global" or "plugin")."""
        now = self._clock()
        hits, end = await self.store.hit(f"rl:g:{client}", self.window_s)
        verdict = self._verdict(hits, self.global_limit, end - now)
        scope = "global"
        if plugin is not None:
            p_hits, p_end = await self.store.hit(f"rl:p:{plugin}:{client}", self.window_s)
            per_plugin = self._verdict(p_hits, self.plugin_limit, p_end - now)
            # Report whichever window is closer to refusing.
            if not per_plugin.allowed or (per_plugin.remaining < verdict.remaining and verdict.allowed):
                verdict, scope = per_plugin, "plugin"
        return verdict, scope

    @staticmethod
    def _verdict(hits: int, limit: int, seconds_left: float) -> Verdict:
        return Verdict(hits <= limit, limit, max(0, limit - hits), max(0, math.ceil(seconds_left)))
