"""Login throttling: too many failed logins for one email (or from one IP) answer 429.

Failures are documents in the plug-in's database (``login_failures``: ``{_id, key, at}``),
so every process of a split deployment sees the same counts. A key is ``email:<address>``
or ``ip:<address>``; a failure inside the last ``window_s`` seconds counts. The ``Retry-After``
is the time until enough failures leave the window to allow one more attempt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fittracker_plugins.users.store import new_id

from fittracker import TooManyRequests
from fittracker.storage import Collection, Database


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    max_failures: int


class LoginThrottle:
    """Counts failed logins per email and per client IP inside a sliding window."""

    def __init__(self, db: Database, *, max_failures: int, ip_max_failures: int, window_s: int) -> None:
        self.failures: Collection = db.collection("login_failures")
        self.max_failures = max_failures
        self.ip_max_failures = ip_max_failures
        self.window_s = window_s

    async def create_indexes(self) -> None:
        await self.failures.create_index([("key", 1), ("at", -1)])
        await self.failures.create_index([("at", 1)])

    def _limits(self, email: str, ip: str | None) -> list[Limit]:
        limits = [Limit(f"email:{email}", self.max_failures)]
        if ip:
            limits.append(Limit(f"ip:{ip}", self.ip_max_failures))
        return limits

    async def check(self, email: str, ip: str | None) -> None:
        """Raise 429 with ``Retry-After`` while ``email`` or ``ip`` is locked out."""
        now = time.time()
        wait = 0.0
        for limit in self._limits(email, ip):
            recent = await self.failures.find(
                {"key": limit.key, "at": {"$gt": now - self.window_s}},
                sort=[("at", -1)],
                limit=limit.max_failures,
            )
            if len(recent) >= limit.max_failures:
                # the oldest of the last max_failures must leave the window first
                wait = max(wait, recent[-1]["at"] + self.window_s - now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"too many failed logins; try again in {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )

    async def record_failure(self, email: str, ip: str | None) -> None:
        now = time.time()
        for limit in self._limits(email, ip):
            await self.failures.insert_one({"_id": new_id(), "key": limit.key, "at": now})

    async def clear(self, email: str) -> None:
        """A successful login forgets the email's failures (not the IP's)."""
        await self.failures.delete_many({"key": f"email:{email}"})

    async def purge(self) -> int:
        """Forget failures that left the window."""
        return await self.failures.delete_many({"at": {"$lt": time.time() - self.window_s}})
