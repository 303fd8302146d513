"""Push delivery end to end, in both deployments, and at-least-once across a worker crash.

A real local webhook receiver checks the Standard Webhooks signature of what arrives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.deployments import WEBHOOK_SECRET, start_split_server
from tests.helpers import DEFAULT_PASSWORD, auth

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    hold_first_s: float = 0.0
    first_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    first_id: str = ""


def signature_ok(headers: Any, body: bytes) -> bool:
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    return f"v1,{expected}" in headers["webhook-signature"].split(" ")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        assert signature_ok(request.headers, body)
        if not state.first_arrived.is_set():
            state.first_id = request.headers["webhook-id"]
            state.first_arrived.set()
            await asyncio.sleep(state.hold_first_s)  # long enough to kill the sender meanwhile
        state.received.append({"id": request.headers["webhook-id"], "body": await request.json()})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/hook"
    yield state
    await runner.cleanup()


async def lifter_with_webhook(api: Any, hook_url: str) -> str:
    email = f"push-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": DEFAULT_PASSWORD, "name": "Push Lifter"}
    token: str = (await (await api.post("/api/v1/auth/register", json=body)).json())["access_token"]
    resp = await api.post(
        "/api/v1/notifications/devices", headers=auth(token), json={"platform": "webhook", "token": hook_url}
    )
    assert resp.status == 201, await resp.text()
    return token


async def break_a_record(api: Any, token: str) -> None:
    wid = (await (await api.post("/api/v1/workouts", headers=auth(token), json={})).json())["id"]
    body = {"exercise_id": BENCH, "reps": 5, "weight_kg": 100}
    assert (await api.post(f"/api/v1/workouts/{wid}/sets", headers=auth(token), json=body)).status == 201


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not delivered in time"
        await asyncio.sleep(0.05)


async def test_record_reaches_inbox_and_device(api: Any, receiver: Receiver) -> None:
    token = await lifter_with_webhook(api, receiver.url)
    await break_a_record(api, token)
    await wait_until(lambda: bool(receiver.received))
    pushed = receiver.received[0]["body"]
    assert "record" in str(pushed).lower() or "100" in str(pushed)

    # Three records (heaviest, e1RM, reps at a weight) make three celebrations; wait for all,
    # since the inbox fills as the events are handled.
    async def unread() -> int:
        body = await (await api.get("/api/v1/notifications/unread-count", headers=auth(token))).json()
        return int(body["count"])

    deadline = time.monotonic() + 15
    while await unread() < 3:
        assert time.monotonic() < deadline, "celebrations missing from the inbox"
        await asyncio.sleep(0.05)
    inbox = await (await api.get("/api/v1/notifications", headers=auth(token))).json()
    ids = {item["id"] for item in inbox["items"]}
    assert len(ids) == await unread()
    assert (await api.post("/api/v1/notifications/read-all", headers=auth(token))).status == 200
    inbox = await (await api.get("/api/v1/notifications", headers=auth(token))).json()
    assert all(item["read_at"] for item in inbox["items"] if item["id"] in ids)


async def test_push_survives_a_worker_killed_mid_delivery(tmp_path: Path, receiver: Receiver) -> None:
    """At-least-once: the sender dies while the webhook call is in flight; it is sent again."""
    receiver.hold_first_s = 3.0
    server = start_split_server(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            api = _Api(server.url, session)
            token = await lifter_with_webhook(api, receiver.url)
            before = server.worker_pids("notifications")
            await break_a_record(api, token)
            await asyncio.wait_for(receiver.first_arrived.wait(), 15)
            first = receiver.first_id
            for pid in before:  # whichever holds the delivery, it dies before the answer
                os.kill(pid, signal.SIGKILL)
            # The record's other celebrations may arrive first; the held one must come again,
            # with the same webhook-id, so receivers can deduplicate.
            again = lambda: sum(1 for item in receiver.received if item["id"] == first) >= 2  # noqa: E731
            await wait_until(again, timeout=30)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)


class _Api:
    """Just enough of a client for a server this test owns."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def post(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        resp = await self.session.post(self.base + path, **kw)
        await resp.read()
        return resp
