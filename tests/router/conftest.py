"""Fixtures for the router tests: real upstream servers and a front app that proxies to them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fittracker.http.requestid import HEADER, accept_or_make
from fittracker.log import reset_request_id, set_request_id
from fittracker.router import PluginProxy, UpstreamPool
from tests.router.harness import Seen, UpstreamServer, free_port, unix_url

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StartUpstream = Callable[..., Awaitable[UpstreamServer]]
MakeProxy = Callable[..., Awaitable[PluginProxy]]
Front = Callable[[PluginProxy], Awaitable[TestClient[Any, Any]]]

# Short enough to keep the suite fast, long enough not to be flaky on a busy machine.
FAST: dict[str, Any] = {
    "probe_path": "/health",
    "connect_timeout_s": 1.0,
    "read_timeout_s": 5.0,
    "probe_interval_s": 0.1,
    "probe_timeout_s": 0.5,
}


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths must stay under ~100 bytes: pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="ftr-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def start_upstream(sock_dir: Path) -> AsyncIterator[StartUpstream]:
    """``await start_upstream("a", unix=False, started=True)``: a running (or not) upstream."""
    servers: list[UpstreamServer] = []

    async def factory(name: str, *, unix: bool = False, started: bool = True) -> UpstreamServer:
        url = unix_url(sock_dir, name) if unix else f"http://127.0.0.1:{free_port()}"
        server = UpstreamServer(name, url, Seen())
        if started:
            await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


@pytest.fixture
async def make_proxy() -> AsyncIterator[MakeProxy]:
    """``await make_proxy(pool, **settings)``: a started proxy, closed at teardown."""
    proxies: list[PluginProxy] = []

    async def factory(pool: UpstreamPool, **settings: Any) -> PluginProxy:
        proxy = PluginProxy(pool, **{**FAST, **settings})
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield factory
    for proxy in proxies:
        await proxy.close()


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The same contract as the real request-context middleware: a request id in context.
    token = set_request_id(accept_or_make(request.headers.get(HEADER)))
    try:
        return await handler(request)
    finally:
        reset_request_id(token)


@pytest.fixture
def front(aiohttp_client: Any) -> Front:
    """``await front(proxy)``: a test client for an app whose every path goes to ``proxy``."""

    async def factory(proxy: PluginProxy) -> TestClient[Any, Any]:
        app = web.Application(middlewares=[request_context])
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return factory
