"""The webhook provider against a local receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from fittracker_plugins.notifications.push_webhook import WebhookProvider

from fittracker.push import Device, PushMessage
from tests.helpers import auth, register
from tests.notifications.conftest import MakeDeliveryClient, MakeDispatcher
from tests.notifications.delivery_helpers import notification

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


class Receiver:
    """A webhook endpoint that checks every request the way a receiver must."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 204

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        msg_id, timestamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        expected = hmac.new(KEY, f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
        scheme, _, signature = request.headers["webhook-signature"].partition(",")
        assert scheme == "v1"
        assert hmac.compare_digest(base64.b64decode(signature), expected), "bad signature"
        assert request.content_type == "application/json"
        self.received.append(
            {"headers": dict(request.headers), "body": json.loads(raw), "path": request.path}
        )
        return web.Response(status=self.status)


async def start_receiver() -> tuple[Receiver, TestServer]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{name}", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return receiver, server


async def test_webhook_push_is_signed_and_shaped(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    receiver, server = await start_receiver()
    try:
        client = await make_delivery_client(webhook_secret=SECRET)
        dispatcher = await make_dispatcher(client)
        body = await register(client)
        url = str(server.make_url("/hooks/coach"))
        resp = await client.post(
            "/api/v1/notifications/devices",
            json={"platform": "webhook", "token": url, "name": "coach dashboard"},
            headers=auth(body["access_token"]),
        )
        assert resp.status == 201, await resp.text()
        await dispatcher.enqueue(notification(body["user"]["id"]), ["push"], None)
        assert await dispatcher.run_once() == 1
        [got] = receiver.received
        assert got["path"] == "/hooks/coach"
        assert got["headers"]["webhook-id"] == "n1"
        assert got["headers"]["webhook-timestamp"].isdigit()
        assert got["body"]["type"] == "notification.achievements"
        assert got["body"]["timestamp"].endswith("Z")
        assert got["body"]["data"] == {
            "notification_id": "n1",
            "category": "achievements",
            "title": "New record",
            "body": "Bench press: 100 kg",
            "data": {"exercise_id": "Bench_Press", "weight_kg": 100},
        }
        [record] = await dispatcher.for_notification("n1")
        assert record["state"] == "sent"
    finally:
        await server.close()


async def test_webhook_statuses_map_to_outcomes() -> None:
    receiver, server = await start_receiver()
    provider = WebhookProvider(SECRET, now=lambda: 1_900_000_000)
    try:
        device = Device("d1", "u1", "webhook", str(server.make_url("/hooks/x")))
        message = PushMessage("n1", "t", "b", "social")
        for status, outcome in [
            (200, "sent"),
            (410, "invalid_token"),
            (503, "retry"),
            (429, "retry"),
            (400, "failed"),
        ]:
            receiver.status = status
            assert (await provider.send(device, message)).outcome == outcome, status
        assert receiver.received[0]["headers"]["webhook-timestamp"] == "1900000000"
        gone = Device("d2", "u1", "webhook", "http://127.0.0.1:1/nothing-listens")
        result = await provider.send(gone, message)
        assert result.outcome == "retry" and "unreachable" in result.detail
    finally:
        await provider.close()
        await server.close()
