"""The FCM HTTP v1 provider against a local server that checks the exact request."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from fittracker_plugins.notifications.push_fcm import FcmProvider

from fittracker.push import Device, PushMessage
from tests.helpers import auth, register
from tests.notifications.conftest import MakeDeliveryClient, MakeDispatcher
from tests.notifications.delivery_helpers import notification

TOKEN = "fcm-token_0123456789:abcdefghijklmnopqrstuvwxyz"


class FakeFcm:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, {"name": "projects/demo/messages/0:1"})

    async def send(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "auth": request.headers.get("Authorization"),
                "type": request.content_type,
                "body": await request.json(),
            }
        )
        status, body = self.answer
        return web.json_response(body, status=status)


async def start_fcm() -> tuple[FakeFcm, TestServer]:
    fake = FakeFcm()
    app = web.Application()
    app.router.add_post("/v1/projects/demo/messages:send", fake.send)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return fake, server


def error(status: int, code: str, detail_code: str | None = None) -> tuple[int, dict[str, Any]]:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": detail_code}]
    return status, {
        "error": {
            "code": status,
            "message": "nope",
            "status": code,
            "details": details if detail_code else [],
        }
    }


async def test_fcm_request_shape_through_the_pipeline(
    make_delivery_client: MakeDeliveryClient, make_dispatcher: MakeDispatcher
) -> None:
    fake, server = await start_fcm()
    try:
        client = await make_delivery_client(
            fcm_project_id="demo", fcm_access_token="ya29.test-token", fcm_base_url=str(server.make_url(""))
        )
        dispatcher = await make_dispatcher(client)
        body = await register(client)
        resp = await client.post(
            "/api/v1/notifications/devices",
            json={"platform": "fcm", "token": TOKEN},
            headers=auth(body["access_token"]),
        )
        assert resp.status == 201
        await dispatcher.enqueue(notification(body["user"]["id"]), ["push"], None)
        await dispatcher.run_once()
        [got] = fake.requests
        assert got["auth"] == "Bearer ya29.test-token" and got["type"] == "application/json"
        assert got["body"] == {
            "message": {
                "token": TOKEN,
                "notification": {"title": "New record", "body": "Bench press: 100 kg"},
                # FCM data values are strings: non-strings travel as JSON.
                "data": {
                    "exercise_id": "Bench_Press",
                    "weight_kg": "100",
                    "notification_id": "n1",
                    "category": "achievements",
                },
            }
        }
        [record] = await dispatcher.for_notification("n1")
        assert record["state"] == "sent" and record["provider_id"] == "projects/demo/messages/0:1"
    finally:
        await server.close()


async def test_fcm_errors_map_to_outcomes_and_the_token_provider_is_asked_each_time() -> None:
    fake, server = await start_fcm()
    issued: list[str] = []

    async def tokens() -> str:
        issued.append(f"tok{len(issued)}")
        return issued[-1]

    provider = FcmProvider("demo", tokens, base_url=str(server.make_url("")))
    device, message = Device("d", "u", "fcm", TOKEN), PushMessage("n1", "t", "b", "system")
    cases = [
        (error(404, "NOT_FOUND", "UNREGISTERED"), "invalid_token"),
        (error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), "invalid_token"),
        (error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "retry"),
        (error(503, "UNAVAILABLE", "UNAVAILABLE"), "retry"),
        (error(401, "UNAUTHENTICATED"), "retry"),
        (error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), "failed"),
    ]
    try:
        for answer, outcome in cases:
            fake.answer = answer
            result = await provider.send(device, message)
            assert result.outcome == outcome, (answer, result)
        assert (
            "UNREGISTERED"
            in (await _send_with(fake, provider, error(404, "NOT_FOUND", "UNREGISTERED"))).detail
        )
        assert [r["auth"] for r in fake.requests[:2]] == ["Bearer tok0", "Bearer tok1"]
    finally:
        await provider.close()
        await server.close()


async def _send_with(fake: FakeFcm, provider: FcmProvider, answer: tuple[int, dict[str, Any]]) -> Any:
    fake.answer = answer
    return await provider.send(Device("d", "u", "fcm", TOKEN), PushMessage("n", "t", "b", "system"))


def test_fcm_needs_a_project_and_a_token() -> None:
    base = {"fcm_base_url": "https://fcm.googleapis.com", "push_timeout_s": 5.0}
    assert FcmProvider.from_settings({**base, "fcm_project_id": "", "fcm_access_token": "x"}) is None
    assert FcmProvider.from_settings({**base, "fcm_project_id": "p", "fcm_access_token": ""}) is None
    provider = FcmProvider.from_settings({**base, "fcm_project_id": "p", "fcm_access_token": "x"})
    assert provider is not None and provider.url == "https://fcm.googleapis.com/v1/projects/p/messages:send"
    assert json.dumps(FcmProvider.payload(Device("d", "u", "fcm", "t"), PushMessage("n", "t", "b", "c")))
