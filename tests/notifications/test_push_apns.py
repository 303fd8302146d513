"""The APNs provider against a local HTTP/2 server (hypercorn, h2c with prior knowledge).

The server checks the request as APNs would: HTTP/2, the path, the apns-* headers, the JSON
payload, and the ES256 provider token, verified with the public half of a key made here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fittracker_plugins.notifications.push_apns import TOKEN_TTL_S, ApnsProvider
from hypercorn.asyncio import serve
from hypercorn.config import Config

from fittracker.push import Device, PushMessage
from tests.helpers import auth, register
from tests.notifications.conftest import MakeDeliveryClient, MakeDispatcher
from tests.notifications.delivery_helpers import free_port, notification

DEVICE_TOKEN = "ab" * 32
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class FakeApns:
    """An ASGI app that records requests and answers from ``answers`` (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            {
                "http_version": scope["http_version"],
                "method": scope["method"],
                "path": scope["path"],
                "headers": headers,
                "body": json.loads(body),
            }
        )
        status, payload = self.answers.pop(0) if self.answers else (200, {})
        out = json.dumps(payload).encode() if payload else b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"apns-id", headers.get("apns-id", "").encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})


@pytest.fixture
async def fake_apns() -> AsyncIterator[tuple[FakeApns, str]]:
    app = FakeApns()
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(100):  # wait until it listens
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}"
    stop.set()
    await task


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "AuthKey_KEY1234567.p8"
    path.write_bytes(pem)
    return path, key.public_key()


async def test_apns_request_over_http2_with_a_verifiable_jwt(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    fake_apns: tuple[FakeApns, str],
    signing_key: tuple[Path, ec.EllipticCurvePublicKey],
) -> None:
    server, base_url = fake_apns
    key_file, public_key = signing_key
    client = await make_delivery_client(
        apns_team_id="TEAM123456",
        apns_key_id="KEY1234567",
        apns_key_file=str(key_file),
        apns_topic="dev.fittracker.app",
        apns_base_url=base_url,
    )
    dispatcher = await make_dispatcher(client)
    body = await register(client)
    resp = await client.post(
        "/api/v1/notifications/devices",
        json={"platform": "apns", "token": DEVICE_TOKEN.upper()},
        headers=auth(body["access_token"]),
    )
    assert resp.status == 201 and (await resp.json())["token"] == DEVICE_TOKEN  # normalised to lower case
    await dispatcher.enqueue(notification(body["user"]["id"]), ["push"], None)
    await dispatcher.run_once()
    [got] = server.requests
    assert got["http_version"] == "2" and got["method"] == "POST"
    assert got["path"] == f"/3/device/{DEVICE_TOKEN}"
    headers = got["headers"]
    assert headers["apns-topic"] == "dev.fittracker.app"
    assert headers["apns-push-type"] == "alert" and headers["apns-priority"] == "10"
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEY1234567", "typ": "JWT"}
    claims = jwt.decode(token, public_key, algorithms=["ES256"])
    assert claims["iss"] == "TEAM123456" and isinstance(claims["iat"], int)
    assert got["body"] == {
        "aps": {"alert": {"title": "New record", "body": "Bench press: 100 kg"}},
        "exercise_id": "Bench_Press",
        "weight_kg": 100,
        "notification_id": "n1",
        "category": "achievements",
    }
    [record] = await dispatcher.for_notification("n1")
    assert record["state"] == "sent" and record["provider_id"] == headers["apns-id"]


async def test_apns_answers_map_to_outcomes_and_stale_jwts_are_renewed(
    fake_apns: tuple[FakeApns, str], signing_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    server, base_url = fake_apns
    key_file, public_key = signing_key
    now = [1_700_000_000.0]
    provider = ApnsProvider(
        team_id="T",
        key_id="K",
        private_key=key_file.read_text(),
        topic="dev.fittracker.app",
        base_url=base_url,
        priority=5,
        now=lambda: now[0],
    )
    device, message = (
        Device("d", "u", "apns", DEVICE_TOKEN),
        PushMessage("n1", "t", "b", "social", {"aps": "no"}),
    )
    server.answers = [
        (410, {"reason": "Unregistered", "timestamp": 1}),
        (400, {"reason": "BadDeviceToken"}),
        (400, {"reason": "PayloadTooLarge"}),
        (429, {"reason": "TooManyRequests"}),
        (503, {"reason": "ServiceUnavailable"}),
        (403, {"reason": "ExpiredProviderToken"}),
        (200, {}),
    ]
    try:
        outcomes = [(await provider.send(device, message)).outcome for _ in range(7)]
        assert outcomes == ["invalid_token", "invalid_token", "failed", "retry", "retry", "retry", "sent"]
        tokens = [r["headers"]["authorization"] for r in server.requests]
        assert len(set(tokens[:6])) == 1 and tokens[6] != tokens[0]  # renewed after ExpiredProviderToken
        assert server.requests[0]["headers"]["apns-priority"] == "5"
        assert server.requests[0]["body"]["aps"] == {
            "alert": {"title": "t", "body": "b"}
        }  # data can't clobber aps
        now[0] += TOKEN_TTL_S  # and renewed when 50 minutes old
        await provider.send(device, message)
        assert server.requests[-1]["headers"]["authorization"] != tokens[6]
        iat = jwt.decode(
            server.requests[-1]["headers"]["authorization"][7:], public_key, algorithms=["ES256"]
        )["iat"]
        assert iat == int(now[0])
    finally:
        await provider.close()
