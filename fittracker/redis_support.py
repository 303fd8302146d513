"""Shared plumbing for the Redis backends (bus, rate-limit counters, cache).

- :func:`redis_client` builds a ``redis.asyncio`` client with the options every backend
  relies on.
- :class:`Outage` remembers that Redis is unreachable, so an outage is logged once (not once
  per request) and Redis is retried at a bounded rate instead of on every call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions

# What "Redis is unreachable" looks like: refused or reset connections, timeouts, DNS errors.
# Command errors (wrong type, bad script) are bugs and are not caught as outages.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


def redis_client(
    url: str,
    *,
    decode_responses: bool = False,
    timeout: float | None = None,
) -> aioredis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); connects lazily.

    The reply shapes the backends parse are RESP2's, so the protocol is pinned rather than
    left to the library default. ``timeout`` bounds connects and replies; leave it ``None``
    for clients that issue blocking commands (``XREADGROUP BLOCK``).
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        protocol=2,
        socket_connect_timeout=timeout if timeout is not None else 5.0,
        socket_timeout=timeout,
    )


def client_for(redis: str | aioredis.Redis, *, timeout: float) -> tuple[aioredis.Redis, bool]:
    """The client to use for ``redis``, and whether the caller owns (and must close) it.

    A URL gets a new client, owned by the caller; a client is borrowed (its owner closes it).
    """
    if isinstance(redis, str):
        return redis_client(redis, timeout=timeout), True
    return redis, False


class Outage:
    """Whether Redis is currently reachable, from the point of view of one backend."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        *,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._log = logger
        self._retry_interval = retry_interval
        self._clock = clock
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def should_try(self) -> bool:
        """True when Redis is up, or when it is down and the retry interval has passed."""
        return self._down_since is None or self._clock() >= self._next_try

    def failed(self, exc: BaseException) -> None:
        """Record a failed call; only the first one of an outage is logged as a warning."""
        now = self._clock()
        self._next_try = now + self._retry_interval
        if self._down_since is None:
            self._down_since = now
            self._log.warning("%s: Redis is unreachable (%s); degrading until it returns", self.what, exc)
        else:
            self._log.debug("%s: Redis still unreachable: %s", self.what, exc)

    def recovered(self) -> None:
        """Record a successful call; logs the end of an outage."""
        if self._down_since is not None:
            self._log.warning(
                "%s: Redis is reachable again after %.1fs", self.what, self._clock() - self._down_since
            )
            self._down_since = None
