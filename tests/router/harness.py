"""Real upstream servers for the router tests: small aiohttp apps on loopback ports or sockets.

Each upstream answers with its own name, so a test can tell which one served a request, and
records what it saw (paths, headers, WebSocket close codes) for the test to inspect.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from fittracker.router.pool import Upstream, UpstreamPool

SHUTDOWN_S = 0.2


@dataclass
class Seen:
    """What one upstream observed."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    ws_close_codes: list[int | None] = field(default_factory=list)
    ws_closed: asyncio.Event = field(default_factory=asyncio.Event)
    healthy: bool = True
    release: asyncio.Event = field(default_factory=asyncio.Event)
    upload_started: asyncio.Event = field(default_factory=asyncio.Event)
    first_chunk_read: asyncio.Event = field(default_factory=asyncio.Event)


def _describe(request: web.Request, name: str, body: bytes) -> dict[str, Any]:
    return {
        "upstream": name,
        "method": request.method,
        "path_qs": request.raw_path,
        "query": dict(request.query),
        "headers": {k: v for k, v in request.headers.items()},
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


def make_upstream_app(name: str, seen: Seen) -> web.Application:
    async def record(request: web.Request) -> None:
        seen.requests.append((request.method, request.path))
        seen.headers.append(dict(request.headers))

    async def health(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(
            {"status": "ok" if seen.healthy else "down"}, status=200 if seen.healthy else 503
        )

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        body = await request.read()
        return web.json_response(
            _describe(request, name, body),
            headers={"X-Upstream": name, "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1"},
        )

    async def upload(request: web.Request) -> web.Response:
        # Reads the body chunk by chunk; the test holds the rest of its upload back until
        # the first chunk got here, which only a streaming proxy allows.
        await record(request)
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
            seen.upload_started.set()
        return web.json_response({"upstream": name, "body_len": size, "body_sha256": digest.hexdigest()})

    async def stream(request: web.Request) -> web.StreamResponse:
        await record(request)
        size, chunk = int(request.query.get("size", "1048576")), b"x" * 65536
        response = web.StreamResponse(
            headers={"X-Upstream": name, "Content-Type": "application/octet-stream"}
        )
        await response.prepare(request)  # no Content-Length: chunked
        await response.write(chunk)
        if request.query.get("wait"):
            await asyncio.wait_for(seen.first_chunk_read.wait(), 5)
        if request.query.get("cut"):
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()  # dies mid-body
            return response
        sent = len(chunk)
        while sent < size:
            part = chunk[: min(len(chunk), size - sent)]
            await response.write(part)
            sent += len(part)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(float(request.query.get("s", "2")))
        return web.json_response({"upstream": name})

    async def hold(request: web.Request) -> web.Response:
        await record(request)
        await seen.release.wait()
        return web.json_response({"upstream": name})

    async def die(request: web.Request) -> web.Response:
        # Takes the request in full, then drops the connection without answering.
        await record(request)
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()  # never reaches the proxy: the connection is closing

    async def garbage(request: web.Request) -> web.Response:
        # Answers, but not with HTTP: a broken worker rather than a dead one.
        await record(request)
        assert request.transport is not None
        request.transport.write(b"HTTP/1.1 ??? Nonsense\r\nContent-Length: 2\r\n\r\nno")
        request.transport.close()
        return web.Response()  # never reaches the proxy: the connection is closing

    async def ws(request: web.Request) -> web.WebSocketResponse:
        await record(request)
        sock: web.WebSocketResponse = web.WebSocketResponse(protocols=("chat.v1", "chat.v2"))
        await sock.prepare(request)
        await sock.send_str(f"hello from {name} {request.query_string}".strip())
        async for msg in sock:
            if msg.type == WSMsgType.TEXT:
                if msg.data.startswith("close:"):
                    _, code, reason = msg.data.split(":", 2)
                    await sock.close(code=int(code), message=reason.encode())
                    break
                if msg.data == "die":
                    assert request.transport is not None
                    request.transport.abort()
                    break
                if msg.data == "whoami":
                    await sock.send_str(name)
                    continue
                if msg.data == "headers":
                    await sock.send_json(dict(request.headers))
                    continue
                await sock.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sock.send_bytes(msg.data)
        seen.ws_close_codes.append(sock.close_code)
        seen.ws_closed.set()
        return sock

    async def ws_refused(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"detail": "no"}, status=403)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_post("/upload", upload)
    app.router.add_get("/stream", stream)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/hold", hold)
    app.router.add_route("*", "/die", die)
    app.router.add_route("*", "/garbage", garbage)
    app.router.add_get("/ws", ws)
    app.router.add_get("/ws-refused", ws_refused)
    return app


@dataclass
class UpstreamServer:
    name: str
    url: str
    seen: Seen
    runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def start(self) -> None:
        """Serve at ``url`` (again, after a stop: the same port or socket path)."""
        runner = web.AppRunner(make_upstream_app(self.name, self.seen), shutdown_timeout=SHUTDOWN_S)
        await runner.setup()
        site: web.BaseSite
        if self.url.startswith("unix://"):
            site = web.UnixSite(runner, self.url[len("unix://") :])
        else:
            site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.runner = runner

    async def stop(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()

    def upstream(self, plugin: str = "demo", state: str = "ready") -> Upstream:
        u = Upstream(id=self.name, plugin=plugin, url=self.url)
        u.state = state  # type: ignore[assignment]
        return u


def free_port() -> int:
    """A loopback port nothing listens on (connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unix_url(directory: Path, name: str) -> str:
    return f"unix://{directory / (name + '.sock')}"


def pool_of(*servers: UpstreamServer, plugin: str = "demo") -> UpstreamPool:
    pool = UpstreamPool(plugin)
    for server in servers:
        pool.add(server.upstream(plugin))
    return pool


__all__ = ["Seen", "UpstreamServer", "WSCloseCode", "free_port", "pool_of", "unix_url"]
