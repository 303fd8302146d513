"""The live stream in both deployments: through the router to two notification workers in
split mode, and in the single process. Nothing here reaches behind the public API, except
killing worker processes in split mode."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.api.test_journeys import BENCH, signup
from tests.deployments import LiveClient, SplitServer
from tests.helpers import auth

WS = "/api/v1/notifications/ws"


def connect(api: Any, query: str, token: str) -> Any:
    """A WebSocket to the stream: through the router in split mode, in-process otherwise."""
    path = f"{WS}?{query}" if query else WS
    if isinstance(api, LiveClient):
        return api.session.ws_connect(api.base_url + path, headers=auth(token))
    return api.ws_connect(path, headers=auth(token))


async def connect_when_ready(api: Any, query: str, token: str) -> Any:
    """Connect, retrying while the router has no ready worker (one was just killed)."""
    for _ in range(150):
        try:
            return await connect(api, query, token)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status not in (502, 503, 504):
                raise
        await asyncio.sleep(0.1)
    raise AssertionError("the notifications plug-in did not come back")


async def next_json(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    data: dict[str, Any] = msg.json()
    return data


async def until_record(ws: Any, seen: list[dict[str, Any]], timeout: float = 15.0) -> dict[str, Any]:
    """Read (keeping every message in ``seen``) until an achievements notification comes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await next_json(ws, max(0.1, deadline - loop.time()))
        seen.append(message)
        if message["type"] == "notification" and message["data"]["category"] == "achievements":
            return message


async def was_closed(ws: Any, within: float = 3.0) -> bool:
    """Whether the server closes ``ws`` within ``within`` seconds (messages before are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            return False
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return True
    return False


async def lift(api: Any, token: str, weight_kg: float) -> None:
    resp = await api.post("/api/v1/workouts", headers=auth(token), json={"name": "Push"})
    assert resp.status == 201
    workout_id = (await resp.json())["id"]
    body = {"exercise_id": BENCH, "reps": 5, "weight_kg": weight_kg}
    assert (
        await api.post(f"/api/v1/workouts/{workout_id}/sets", headers=auth(token), json=body)
    ).status == 201


async def workers(api: Any) -> dict[str, Any]:
    resp = await api.get("/health/services")
    services: dict[str, Any] = (await resp.json())["services"]
    return dict(services["notifications"])


async def split_server(request: pytest.FixtureRequest, api: Any) -> SplitServer | None:
    """The split deployment once both notification workers are ready; None in single mode."""
    if not isinstance(api, LiveClient):
        return None
    server: SplitServer = request.getfixturevalue("split_server")
    for _ in range(300):
        if (await workers(api))["status"] == "ok":
            break
        await asyncio.sleep(0.1)
    return server


async def test_every_connection_of_a_user_receives_whatever_worker_holds_it(
    api: Any, request: pytest.FixtureRequest
) -> None:
    token = (await signup(api, "Two Devices"))["access_token"]
    server = await split_server(request, api)
    phone = await connect_when_ready(api, "", token)
    web = await connect_when_ready(api, "", token)  # least-outstanding: the other worker
    try:
        for ws in (phone, web):
            assert (await next_json(ws))["type"] == "ready"
        await lift(api, token, 80)
        first = [await until_record(ws, []) for ws in (phone, web)]
        assert first[0]["id"] == first[1]["id"]
        if server is not None:
            pids = server.worker_pids("notifications")
            assert len(pids) == 2
            os.kill(pids[0], signal.SIGKILL)
            # exactly one connection lived on the killed worker: they were on different ones
            closed = [await was_closed(ws) for ws in (phone, web)]
            assert sorted(closed) == [False, True], (
                closed,
                pids,
                [
                    (w["id"], w.get("in_flight"), w.get("pid"), w.get("state"))
                    for w in (await workers(api))["workers"]
                ],
            )
            survivor = web if closed[0] else phone
            await lift(api, token, 90)
            assert int((await until_record(survivor, []))["id"]) > int(first[0]["id"])
    finally:
        await phone.close()
        await web.close()


async def drain(ws: Any, quiet: float = 0.7) -> tuple[int | None, bool]:
    """Read until ``quiet`` seconds pass without a message or the socket closes:
    (the last stream id received, whether it closed)."""
    last: int | None = None
    while True:
        try:
            msg = await ws.receive(timeout=quiet)
        except TimeoutError:
            return last, False
        if msg.type != WSMsgType.TEXT:
            return last, True
        if (stream_id := msg.json()["id"]) is not None:
            last = int(stream_id)


async def test_reconnect_and_recover_across_a_worker_restart(
    api: Any, request: pytest.FixtureRequest
) -> None:
    token = (await signup(api, "Reconnects"))["access_token"]
    server = await split_server(request, api)
    ws = await connect_when_ready(api, "", token)
    await next_json(ws)
    await lift(api, token, 60)
    first = int((await until_record(ws, []))["id"])
    last, closed = await drain(ws)  # the rest of this lift's messages: every rule has run
    last_id = max(first, last or 0)
    assert not closed
    if server is not None:
        for pid in server.worker_pids("notifications"):
            os.kill(pid, signal.SIGKILL)  # whichever worker held the socket is gone
        extra, closed = await drain(ws, quiet=5.0)
        assert closed and extra is None
    await ws.close()
    await lift(api, token, 70)  # missed while disconnected (and, in split mode, while restarting)
    await split_server(request, api)  # both workers back (the router answers 503 until then)
    for _ in range(300):  # wait until it is stored, so that the resume must replay it
        resp = await api.get("/api/v1/notifications?limit=1", headers=auth(token))
        items = (await resp.json())["items"] if resp.status == 200 else []
        if items and int(items[0]["stream_id"]) > last_id:
            break
        await asyncio.sleep(0.1)

    seen: list[dict[str, Any]] = []
    ws = await connect_when_ready(api, f"last_event_id={last_id}", token)
    try:
        await until_record(ws, seen, timeout=30)
        stream_ids = [int(m["id"]) for m in seen if m["id"] is not None]
        # no gap, no duplicate: the stream resumes right after the last id received
        assert stream_ids == list(range(last_id + 1, last_id + 1 + len(stream_ids))), seen
        recovery = [m for m in seen if m["type"] == "recovery"]
        if not recovery:
            recovery = [await next_json(ws)]
            while recovery[0]["type"] != "recovery":
                recovery = [await next_json(ws)]
        assert recovery[0]["data"]["recovered"] is True and recovery[0]["data"]["replayed"] >= 1
    finally:
        await ws.close()
