"""The router's HTTP client sessions: one keep-alive pool for TCP, one per Unix socket.

A single ``TCPConnector`` keys its pool by host and port, so every TCP upstream shares it;
a ``UnixConnector`` is bound to one socket path, so each Unix-socket worker gets its own
session, made on first use and dropped when the worker leaves the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp

from fittracker.router.pool import Upstream

# Keep-alive connections idle longer than this are closed by us first; aiohttp's server
# keeps them for 75 s, so we never reuse one the worker is about to drop.
KEEPALIVE_S = 15.0


class UpstreamSessions:
    def __init__(
        self, *, timeout: aiohttp.ClientTimeout | None = None, connections_per_upstream: int = 256
    ) -> None:
        # The default for every request, WebSocket handshakes included; probes pass their own.
        self.timeout = timeout or aiohttp.ClientTimeout(total=None, connect=2.0, sock_read=30.0)
        self.connections_per_upstream = connections_per_upstream
        self._tcp: aiohttp.ClientSession | None = None
        self._unix: dict[str, aiohttp.ClientSession] = {}
        self._closed = False

    def for_upstream(self, upstream: Upstream) -> aiohttp.ClientSession:
        """The session that reaches ``upstream`` (created lazily, inside the running loop)."""
        if self._closed:
            raise RuntimeError("the router's client sessions are closed")
        if upstream.is_unix:
            path = upstream.socket_path
            session = self._unix.get(path)
            if session is None or session.closed:
                connector = aiohttp.UnixConnector(
                    path=path, limit=self.connections_per_upstream, keepalive_timeout=KEEPALIVE_S
                )
                session = self._unix[path] = _session(connector, self.timeout)
            return session
        if self._tcp is None or self._tcp.closed:
            # limit=0: the number of upstreams varies; the cap that matters is per upstream.
            tcp = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self.connections_per_upstream,
                keepalive_timeout=KEEPALIVE_S,
                use_dns_cache=True,
            )
            self._tcp = _session(tcp, self.timeout)
        return self._tcp

    @property
    def unix_sessions(self) -> int:
        """How many Unix-socket sessions are open (one per worker socket in use)."""
        return len(self._unix)

    async def prune(self, upstreams: Iterable[Upstream]) -> None:
        """Close the sessions of Unix sockets no upstream uses any more."""
        live = {u.socket_path for u in upstreams if u.is_unix}
        stale = [path for path in self._unix if path not in live]
        for path in stale:
            await self._unix.pop(path).close()

    async def close(self) -> None:
        self._closed = True
        sessions = [*self._unix.values(), *([self._tcp] if self._tcp is not None else [])]
        self._unix.clear()
        self._tcp = None
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def _session(connector: aiohttp.BaseConnector, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(
        connector=connector,
        # Bodies pass through byte for byte: no decompression, no cookies kept between
        # different users' requests, no proxy settings from the environment.
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=timeout,
    )
    # aiohttp silently re-sends idempotent methods (PUT and DELETE included) once when a
    # reused connection fails after the request was written. The proxy decides retries
    # itself, and never re-sends a request that may have reached a worker.
    session._retry_connection = False
    return session
