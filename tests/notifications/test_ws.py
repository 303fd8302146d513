"""The live stream: auth, live delivery, several connections, client messages."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.notifications.live_helpers import (
    WS,
    closed_with,
    log_set,
    member,
    of_type,
    receive,
    state_of,
    wait_for,
)


async def test_header_and_query_tokens_are_accepted(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    async with live_client.ws_connect(WS, headers=ada.headers) as ws:
        ready = await receive(ws)
        assert ready["type"] == "ready" and ready["id"] is None and ready["data"] == {"last_event_id": "0"}
    async with live_client.ws_connect(f"{WS}?access_token={ada.token}") as ws:
        assert (await receive(ws))["type"] == "ready"


async def test_missing_invalid_and_revoked_tokens_are_refused(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    for url, headers in [
        (WS, {}),
        (WS, {"Authorization": "Bearer not-a-token"}),
        (f"{WS}?access_token=nope", {}),
    ]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await live_client.ws_connect(url, headers=headers)
        assert refused.value.status == 401
    assert (await live_client.post("/api/v1/auth/logout", headers=ada.headers)).status == 204
    resp = await live_client.get(WS, headers=ada.headers)
    assert resp.status == 401
    assert (await resp.json())["detail"] == "the access token has been revoked"


async def test_revocation_while_connected_closes_with_4001(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    async with live_client.ws_connect(WS, headers=ada.headers) as ws:
        await receive(ws)
        assert (await live_client.post("/api/v1/auth/logout", headers=ada.headers)).status == 204
        assert await closed_with(ws) == 4001


async def test_a_record_is_celebrated_live_on_every_connection(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client, "Ada")
    async with (
        live_client.ws_connect(WS, headers=ada.headers) as phone,
        live_client.ws_connect(WS, headers=ada.headers) as web,
    ):
        await receive(phone), await receive(web)
        workout_id = await log_set(live_client, ada)
        for ws in (phone, web):
            progress = await wait_for(ws, of_type("progress"))
            assert progress["data"]["type"] == "workout.set_logged"
            assert progress["data"]["data"]["workout_id"] == workout_id
            party = await wait_for(ws, of_type("notification", category="achievements"))
            assert party["data"]["type"] == "achievement.record"
            assert party["data"]["title"] == "New personal record!"
            assert party["id"] == party["data"]["stream_id"] and int(party["id"]) > int(progress["id"])
    inbox = await (await live_client.get("/api/v1/notifications", headers=ada.headers)).json()
    # progress is live only: the inbox holds the celebrations
    assert inbox["items"] and {i["category"] for i in inbox["items"]} == {"achievements"}


async def test_client_messages(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    async with live_client.ws_connect(WS, headers=ada.headers) as ws:
        await receive(ws)
        await ws.send_json({"type": "ping"})
        assert (await receive(ws))["type"] == "pong"
        await ws.send_str("not json")
        error = await receive(ws)
        assert error["type"] == "error" and error["data"]["code"] == "bad_message"
        await ws.send_json({"type": "read", "id": "f" * 32})
        assert (await receive(ws))["data"]["code"] == "not_found"
        await ws.send_bytes(b"\x00")
        assert (await receive(ws))["type"] == "error"
        await ws.send_json({"type": "ping"})
        assert (await receive(ws))["type"] == "pong"  # still alive
        await ws.send_str("x" * 5000)  # above max_message_bytes
        assert await closed_with(ws) == 1009


async def test_bad_resume_ids_are_refused_before_the_upgrade(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    resp = await live_client.get(f"{WS}?last_event_id=-1", headers=ada.headers)
    assert resp.status == 422
    assert (await live_client.get(f"{WS}?bogus=1", headers=ada.headers)).status == 422


async def test_connections_leave_the_hub_when_they_close(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    hub = state_of(live_client).hub
    async with live_client.ws_connect(WS, headers=ada.headers) as ws:
        await receive(ws)
        assert hub.count == 1
    for _ in range(100):
        if hub.count == 0:
            break
        await asyncio.sleep(0.01)
    assert hub.count == 0
