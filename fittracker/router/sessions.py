"""The router's HTTP client sessions: one keep-alive pool for TCP, one per Unix socket.

A single ``TCPConnector`` keys its pool by host and port, so every TCP upstream shares it;
a ``UnixConnector`` is bound to one socket path, so each Unix-socket worker gets its own
session, made on first use and dropped when the worker leaves the pool.

WebSockets get pools of their own, without a cap: a relayed WebSocket holds its upstream
connection for as long as it lives, so in the request pools the 257th one would wait for a
slot that never frees, and the plug-in's requests and health probes would wait behind them.
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
        self._requests = _Pools(connections_per_upstream, self.timeout)
        self._websockets = _Pools(0, self.timeout)  # 0: as many as clients open
        self._closed = False

    def for_upstream(self, upstream: Upstream) -> aiohttp.ClientSession:
        """The session for requests to ``upstream`` (created lazily, inside the running loop)."""
        if self._closed:
            raise RuntimeError("the router's client sessions are closed")
        return self._requests.session(upstream)

    def for_websocket(self, upstream: Upstream) -> aiohttp.ClientSession:
        """The session for WebSocket handshakes to ``upstream`` (uncapped, see the module)."""
        if self._closed:
            raise RuntimeError("the router's client sessions are closed")
        return self._websockets.session(upstream)

    @property
    def unix_sessions(self) -> int:
        """How many Unix-socket request sessions are open (one per worker socket in use)."""
        return len(self._requests.unix)

    async def prune(self, upstreams: Iterable[Upstream]) -> None:
        """Close the sessions of Unix sockets no upstream uses any more."""
        live = {u.socket_path for u in upstreams if u.is_unix}
        await self._requests.prune(live)
        await self._websockets.prune(live)

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(self._requests.close(), self._websockets.close())


class _Pools:
    """One TCP session for every TCP upstream, one session per Unix socket; ``limit`` each."""

    def __init__(self, limit: int, timeout: aiohttp.ClientTimeout) -> None:
        self.limit = limit
        self.timeout = timeout
        self.tcp: aiohttp.ClientSession | None = None
        self.unix: dict[str, aiohttp.ClientSession] = {}

    def session(self, upstream: Upstream) -> aiohttp.ClientSession:
        if upstream.is_unix:
            path = upstream.socket_path
            session = self.unix.get(path)
            if session is None or session.closed:
                connector = aiohttp.UnixConnector(path=path, limit=self.limit, keepalive_timeout=KEEPALIVE_S)
                session = self.unix[path] = _session(connector, self.timeout)
            return session
        if self.tcp is None or self.tcp.closed:
            # limit=0: the number of upstreams varies; the cap that matters is per upstream.
            tcp = aiohttp.TCPConnector(
                limit=0, limit_per_host=self.limit, keepalive_timeout=KEEPALIVE_S, use_dns_cache=True
            )
            self.tcp = _session(tcp, self.timeout)
        return self.tcp

    async def prune(self, live: set[str]) -> None:
        for path in [path for path in self.unix if path not in live]:
            await self.unix.pop(path).close()

    async def close(self) -> None:
        sessions = [*self.unix.values(), *([self.tcp] if self.tcp is not None else [])]
        self.unix.clear()
        self.tcp = None
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
