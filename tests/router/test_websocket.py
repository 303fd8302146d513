"""WebSocket upgrades through the proxy: messages both ways, close codes, keep-alive, failures."""

from __future__ import annotations

import asyncio
import base64
import os

import aiohttp
import pytest
from aiohttp import WSMsgType

from fittracker import internal_auth
from tests.router.conftest import Front, MakeProxy, StartUpstream
from tests.router.harness import pool_of


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_echo_text_and_binary_with_subprotocol_query_and_headers(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front, unix: bool
) -> None:
    server = await start_upstream("a", unix=unix)
    client = await front(await make_proxy(pool_of(server), secret="s3cret"))
    async with client.ws_connect(
        "/ws?last_event_id=42",
        protocols=("chat.v2",),
        headers={"Authorization": "Bearer tok", "X-Request-ID": "req-ws-000001"},
    ) as ws:
        assert ws.protocol == "chat.v2"
        assert await ws.receive_str() == "hello from a last_event_id=42"
        await ws.send_str("ping über")
        assert await ws.receive_str() == "ping über"
        blob = os.urandom(200_000)
        await ws.send_bytes(blob)
        assert await ws.receive_bytes() == blob
        await ws.send_str("headers")
        seen = await ws.receive_json()
        assert seen["Authorization"] == "Bearer tok"
        assert seen["X-Request-ID"] == "req-ws-000001"
        assert seen["X-Forwarded-For"] == "127.0.0.1"
        assert internal_auth.verify(
            "s3cret", seen["X-FitTracker-Internal"], "GET", "/ws?last_event_id=42", "req-ws-000001"
        )
    await asyncio.wait_for(server.seen.ws_closed.wait(), 2)
    assert server.seen.ws_close_codes == [1000]


async def test_close_code_from_upstream_reaches_the_client(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server)))
    async with client.ws_connect("/ws") as ws:
        await ws.receive_str()
        await ws.send_str("close:4001:bye now")
        msg = await ws.receive()
        assert msg.type == WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (4001, "bye now")
    assert ws.close_code == 4001


async def test_close_code_from_client_reaches_the_upstream(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    proxy = await make_proxy(pool_of(server))
    client = await front(proxy)
    ws = await client.ws_connect("/ws")
    await ws.receive_str()
    await ws.close(code=4002, message=b"done")
    await asyncio.wait_for(server.seen.ws_closed.wait(), 2)
    assert server.seen.ws_close_codes == [4002]
    await asyncio.sleep(0.05)
    assert proxy.describe()["websockets"] == 0
    assert all(u.in_flight == 0 for u in proxy.pool.all())


async def test_quiet_connection_outlives_several_heartbeats(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server), ws_heartbeat_s=0.2))
    async with client.ws_connect("/ws") as ws:
        await ws.receive_str()
        # Keep a receive pending (as a real client does) so our side answers the pings.
        pending = asyncio.create_task(ws.receive())
        await asyncio.sleep(0.7)  # > 3 heartbeats with no message at all
        assert not pending.done()
        await ws.send_str("still here")
        msg = await asyncio.wait_for(pending, 2)
        assert (msg.type, msg.data) == (WSMsgType.TEXT, "still here")


async def test_upstream_dying_closes_the_client_with_1011(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    proxy = await make_proxy(pool_of(server), eject_after=100)
    client = await front(proxy)
    async with client.ws_connect("/ws") as ws:
        await ws.receive_str()
        await ws.send_str("die")
        msg = await asyncio.wait_for(ws.receive(), 3)
        assert msg.type == WSMsgType.CLOSE
        assert msg.data == 1011
    upstream = proxy.pool.get("a")
    assert upstream is not None and upstream.last_error


async def test_refused_upgrade_returns_the_upstream_status(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server)))
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/ws-refused")
    assert caught.value.status == 403
    resp = await client.get(
        "/ws-refused",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        },
    )
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["type"].endswith("/websocket-refused")
    assert body["request_id"] == resp.headers["X-Request-ID"]


async def test_upgrade_retried_on_another_upstream_when_connect_is_refused(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    down, up = await start_upstream("down", started=False), await start_upstream("up")
    client = await front(await make_proxy(pool_of(down, up), eject_after=100))
    for _ in range(2):
        async with client.ws_connect("/ws") as ws:
            assert await ws.receive_str() == "hello from up"


async def test_closing_the_proxy_closes_websockets_with_going_away(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    proxy = await make_proxy(pool_of(server))
    client = await front(proxy)
    async with client.ws_connect("/ws") as ws:
        await ws.receive_str()
        await proxy.close()
        msg = await asyncio.wait_for(ws.receive(), 3)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1001)
    await asyncio.wait_for(server.seen.ws_closed.wait(), 2)
    assert server.seen.ws_close_codes == [1001]


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_websockets_do_not_use_up_the_request_pool(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front, unix: bool
) -> None:
    # More open WebSockets than the request pool has connections: requests still get through.
    server = await start_upstream("a", unix=unix)
    proxy = await make_proxy(pool_of(server), connections_per_upstream=2)
    client = await front(proxy)
    sockets = [await client.ws_connect("/ws") for _ in range(5)]
    try:
        for ws in sockets:
            assert (await ws.receive_str()).startswith("hello from a")
        for _ in range(3):
            resp = await client.get("/health")
            assert resp.status == 200
        assert proxy.describe()["websockets"] == 5
    finally:
        for ws in sockets:
            await ws.close()
