"""Resuming a stream, slow consumers, and ordering when announcements cross."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications import hub as hub_module

from fittracker.http import responses
from tests.conftest import MakeClient
from tests.notifications.live_helpers import (
    LIVE_PLUGINS,
    WS,
    Member,
    closed_with,
    live_config,
    member,
    of_type,
    receive,
    state_of,
    wait_for,
)


async def notify(client: TestClient[Any, Any], who: Member, n: int, **kw: Any) -> list[dict[str, Any]]:
    notifier = state_of(client).notifier
    out = []
    for i in range(n):
        item = await notifier.notify(
            who.user_id, category="coaching", type="coaching.tip", title=f"tip {i}", body="rest more", **kw
        )
        assert item is not None
        out.append(item)
    return out


async def test_resume_replays_what_was_missed_then_live(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    first = await notify(live_client, ada, 2)
    async with live_client.ws_connect(f"{WS}?last_event_id=0", headers=ada.headers) as ws:
        replayed = [await receive(ws), await receive(ws)]
        assert [m["id"] for m in replayed] == [f["stream_id"] for f in first]
        recovery = await receive(ws)
        assert recovery["type"] == "recovery"
        assert recovery["data"] == {"recovered": True, "replayed": 2, "last_event_id": first[-1]["stream_id"]}
        last_seen = first[-1]["stream_id"]
    missed = await notify(live_client, ada, 3)
    async with live_client.ws_connect(f"{WS}?last_event_id={last_seen}", headers=ada.headers) as ws:
        # live notifications created during the replay must come once, in order, after it
        live = asyncio.create_task(notify(live_client, ada, 3))
        ids: list[int] = []
        while len(ids) < 6:
            message = await receive(ws)
            if message["type"] == "notification":
                ids.append(int(message["id"]))
        later = await live
        assert ids == sorted(ids) and len(set(ids)) == 6
        assert ids == [int(n["stream_id"]) for n in missed + later]
        await ws.send_json({"type": "ping"})
        assert (await wait_for(ws, lambda m: m["type"] in ("pong", "notification")))["type"] == "pong"


async def test_resume_from_too_old_or_unknown_ids_asks_for_a_reload(make_client: MakeClient) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(retain_per_user=10))
    ada = await member(client)
    await notify(client, ada, 30)  # pruned down to the last 10 (every 25th entry)
    async with client.ws_connect(f"{WS}?last_event_id=1", headers=ada.headers) as ws:
        recovery = await receive(ws)
        assert recovery["type"] == "recovery"
        assert recovery["data"] == {"recovered": False, "last_event_id": "30"}
        more = await notify(client, ada, 1)
        assert (await receive(ws))["id"] == more[0]["stream_id"]  # live goes on
    async with client.ws_connect(f"{WS}?last_event_id=999", headers=ada.headers) as ws:
        assert (await receive(ws))["data"]["recovered"] is False
    async with client.ws_connect(f"{WS}?last_event_id=25", headers=ada.headers) as ws:
        replayed = [await receive(ws) for _ in range(6)]
        assert [m["id"] for m in replayed] == [str(i) for i in range(26, 32)]
        assert (await receive(ws))["data"]["recovered"] is True


async def test_a_slow_consumer_is_closed_1013_and_others_keep_receiving(make_client: MakeClient) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(send_queue_size=4))
    ada = await member(client)
    hub = state_of(client).hub
    async with client.ws_connect(WS, headers=ada.headers) as slow:
        await receive(slow)
        (slow_conn,) = hub.by_user[ada.user_id]
        stuck = asyncio.Event()

        async def never(*_: object, **__: object) -> None:  # the socket takes no more
            await stuck.wait()

        slow_conn.ws.send_frame = never  # type: ignore[method-assign]
        async with client.ws_connect(WS, headers=ada.headers) as fast:
            await receive(fast)
            for i in range(20):
                hub.deliver(ada.user_id, {"id": None, "type": "pong", "time": "", "data": {"i": i}})
                await asyncio.sleep(0)  # the fast writer keeps up; the stuck one cannot
            assert slow_conn.closing
            received = [await receive(fast) for _ in range(20)]
            assert [m["data"]["i"] for m in received] == list(range(20))
            assert await closed_with(slow) == 1013
            await fast.send_json({"type": "ping"})
            assert (await receive(fast))["type"] == "pong"


async def test_crossed_announcements_are_put_back_in_order(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    state = state_of(live_client)
    async with live_client.ws_connect(WS, headers=ada.headers) as ws:
        await receive(ws)
        # two workers allocate 1 and 2; 2 is stored and announced first, 1 a moment later
        seq1, seq2 = await state.stream.next_seq(ada.user_id), await state.stream.next_seq(ada.user_id)
        docs: list[dict[str, Any]] = [
            {"_id": f"{n:032x}", "user_id": ada.user_id, "seq": n, "kind": "notification", "inbox": True,
             "category": "system", "type": "t", "title": str(n), "body": "", "data": {},
             "created_at": "2025-01-01T00:00:00.000+00:00", "read_at": None}
            for n in (seq1, seq2)
        ]  # fmt: skip
        await state.stream.store(docs[1])
        await state.stream.publish(docs[1])
        await asyncio.sleep(0.05)
        await state.stream.store(docs[0])
        await state.stream.publish(docs[0])
        got = [await receive(ws), await receive(ws)]
        assert [m["id"] for m in got] == [str(seq1), str(seq2)]
        # a hole (allocated, never stored) is skipped after gap_wait_s
        await state.stream.next_seq(ada.user_id)
        doc = {**docs[0], "_id": "a" * 32, "seq": seq2 + 2}
        await state.stream.store(doc)
        await state.stream.publish(doc)
        assert (await wait_for(ws, of_type("notification")))["id"] == str(seq2 + 2)


async def test_a_message_is_encoded_once_for_all_of_a_users_sockets(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config())
    ada = await member(client)
    hub = state_of(client).hub
    encoded: list[object] = []

    def counting_dumps(data: Any) -> bytes:
        encoded.append(data)
        return responses.dumps(data)

    monkeypatch.setattr(hub_module, "dumps", counting_dumps)
    sockets = [await client.ws_connect(WS, headers=ada.headers) for _ in range(3)]
    try:
        for ws in sockets:
            await receive(ws)  # ready
        hub.deliver(ada.user_id, {"id": None, "type": "pong", "time": "", "data": {"n": 1}})
        for ws in sockets:
            assert (await receive(ws))["data"] == {"n": 1}
        assert len(encoded) == 1
    finally:
        for ws in sockets:
            await ws.close()
