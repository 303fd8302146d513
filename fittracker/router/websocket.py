"""WebSocket upgrades through the router: one upstream connection per client connection.

The router first opens the upstream WebSocket (so a refusal can still be answered over plain
HTTP with the upstream's status), then accepts the client, then pumps messages both ways
until either side closes. A close frame's code and reason are passed to the other side; a
side that vanishes without one makes the router close the other side itself: 1011 towards
the client when the upstream died, 1001 towards the upstream when the client went away.
Both legs send heartbeat pings and neither has a receive timeout, so a quiet connection
lives as long as both ends answer pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from fittracker.router.failures import classify, proxy_problem
from fittracker.router.headers import forward_request_headers
from fittracker.router.pool import Upstream

log = logging.getLogger("fittracker.router")

ClientWS = web.WebSocketResponse[Literal[True]]
UpstreamWS = aiohttp.ClientWebSocketResponse[Literal[True]]
AnyWS = ClientWS | UpstreamWS

# Codes a peer may put in a close frame (RFC 6455 §7.4): 1005, 1006 and 1015 only describe
# what happened locally and must never be sent.
_NOT_SENDABLE = frozenset({1004, 1005, 1006, 1015})
_CLOSE_WAIT_S = 5.0
# Header values carried over when the upstream refuses the upgrade.
_REFUSAL_HEADERS = ("WWW-Authenticate", "Retry-After", "Allow")


def is_websocket(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _sendable(code: int | None, fallback: int) -> int:
    if code is None or code in _NOT_SENDABLE or not (1000 <= code <= 4999):
        return fallback
    return code


@dataclass(slots=True)
class _Ended:
    """How one direction of the pump ended."""

    how: Literal["close", "gone", "write_failed"]
    code: int | None = None
    reason: str = ""


class WebSocketRelay:
    def __init__(
        self,
        *,
        secret: str | None,
        heartbeat_s: float = 25.0,
        max_msg_size: int = 4 * 1024 * 1024,
    ) -> None:
        self.secret = secret
        self.heartbeat_s = heartbeat_s
        self.max_msg_size = max_msg_size
        self._open: dict[ClientWS, asyncio.Task[None]] = {}

    @property
    def open_count(self) -> int:
        return len(self._open)

    async def open(
        self, request: web.Request, upstream: Upstream, session: aiohttp.ClientSession, request_id: str
    ) -> UpstreamWS | web.Response:
        """Open the upstream leg; an upgrade the upstream refuses becomes a problem response."""
        path_qs = request.rel_url.raw_path_qs
        protocols = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        headers = forward_request_headers(request, path_qs, request_id, self.secret, websocket=True)
        try:
            return await session.ws_connect(
                URL(upstream.base_url + path_qs, encoded=True),
                protocols=protocols,
                headers=headers,
                heartbeat=self.heartbeat_s,
                # No receive timeout: a quiet connection is fine while it answers pings.
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_WAIT_S),
                max_msg_size=self.max_msg_size,
            )
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status if 400 <= exc.status < 600 else 502
            kept = {h: exc.headers[h] for h in _REFUSAL_HEADERS if exc.headers and h in exc.headers}
            return proxy_problem(
                status,
                f"the {upstream.plugin} plug-in refused the WebSocket upgrade ({exc.status} {exc.message})",
                request_id,
                slug="websocket-refused",
                extra_headers=kept,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise classify(exc) from exc

    async def relay(
        self, request: web.Request, upstream: Upstream, remote: UpstreamWS | web.Response
    ) -> web.StreamResponse:
        """Accept the client and pump both ways until the conversation ends."""
        if isinstance(remote, web.Response):
            return remote  # the upstream refused the upgrade: pass its answer on
        client: ClientWS = web.WebSocketResponse(
            heartbeat=self.heartbeat_s,
            receive_timeout=None,
            protocols=(remote.protocol,) if remote.protocol else (),
            max_msg_size=self.max_msg_size,
            # Recompressing every frame would cost the router CPU for each message relayed.
            compress=False,
        )
        try:
            await client.prepare(request)
        except Exception:
            await remote.close(code=WSCloseCode.GOING_AWAY, message=b"client handshake failed")
            raise
        pump = asyncio.create_task(self._pump_both(client, remote, upstream))
        self._open[client] = pump
        try:
            await asyncio.shield(pump)
        except asyncio.CancelledError:
            # The server cancels handlers whose client connection dropped (handler
            # cancellation): let the pump finish its closing so the upstream still hears
            # the client's close code, then give up.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(pump, _CLOSE_WAIT_S)
            raise
        finally:
            self._open.pop(client, None)
            if not remote.closed:
                await _close(remote, WSCloseCode.GOING_AWAY, "")
        return client

    async def close_all(
        self, code: int = WSCloseCode.GOING_AWAY, reason: str = "router shutting down"
    ) -> None:
        """Close every client connection, then wait for the pumps to close the upstream legs."""
        open_now = list(self._open.items())
        await asyncio.gather(
            *(ws.close(code=code, message=reason.encode()) for ws, _ in open_now), return_exceptions=True
        )
        if open_now:
            await asyncio.wait([pump for _, pump in open_now], timeout=_CLOSE_WAIT_S)

    async def _pump_both(self, client: ClientWS, remote: UpstreamWS, upstream: Upstream) -> None:
        to_client = asyncio.create_task(_pump(remote, client))
        to_upstream = asyncio.create_task(_pump(client, remote))
        try:
            done, _ = await asyncio.wait({to_client, to_upstream}, return_when=asyncio.FIRST_COMPLETED)
            if to_client in done:
                ended = to_client.result()
                if ended.how == "close":
                    await _close(client, _sendable(ended.code, WSCloseCode.OK), ended.reason)
                elif ended.how == "gone":
                    upstream.fail("WebSocket connection to the worker lost")
                    await _close(client, WSCloseCode.INTERNAL_ERROR, "upstream connection lost")
                else:  # the client vanished while we were writing to it
                    await _close(remote, WSCloseCode.GOING_AWAY, "client went away")
                other = to_upstream
            else:
                ended = to_upstream.result()
                if ended.how == "close":
                    await _close(remote, _sendable(ended.code, WSCloseCode.OK), ended.reason)
                elif ended.how == "gone":
                    await _close(remote, WSCloseCode.GOING_AWAY, "client went away")
                else:  # the upstream vanished while we were writing to it
                    upstream.fail("WebSocket connection to the worker lost")
                    await _close(client, WSCloseCode.INTERNAL_ERROR, "upstream connection lost")
                other = to_client
            # Closing a side ends the other pump's receive(); wait for it, briefly.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(other, _CLOSE_WAIT_S)
        finally:
            for task in (to_client, to_upstream):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task


async def _pump(source: AnyWS, sink: AnyWS) -> _Ended:
    """Copy messages from ``source`` to ``sink`` until ``source`` closes or ``sink`` fails."""
    while True:
        try:
            msg = await source.receive()
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            return _Ended("gone", source.close_code)
        try:
            if msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == WSMsgType.CLOSE:
                return _Ended("close", msg.data, msg.extra or "")
            elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return _Ended("gone", source.close_code)
            # PING and PONG never get here: autoping answers them on each leg.
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            return _Ended("write_failed")


async def _close(ws: AnyWS, code: int, reason: str) -> None:
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError, asyncio.TimeoutError):
        await ws.close(code=code, message=reason.encode()[:123])
