"""``/api/v1/notifications/devices``: validation, idempotent registration, ownership."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications.delivery import DISPATCHER

from tests.conftest import MakeClient
from tests.helpers import auth, register
from tests.notifications.conftest import MakeDeliveryClient
from tests.users.conftest import FAST_HASHING

URL = "/api/v1/notifications/devices"
FCM = "fcm_token-0123456789:ABCDEFGHIJKLMNOPQRSTUV"


async def user(client: TestClient[Any, Any]) -> dict[str, str]:
    return auth((await register(client))["access_token"])


async def test_register_list_and_delete(make_delivery_client: MakeDeliveryClient) -> None:
    client = await make_delivery_client()
    me = await user(client)
    resp = await client.post(URL, json={"platform": "fcm", "token": FCM, "name": "Pixel"}, headers=me)
    assert resp.status == 201
    device = await resp.json()
    assert device["platform"] == "fcm" and device["token"] == FCM and device["name"] == "Pixel"
    assert device["active"] is True
    resp = await client.post(
        URL, json={"platform": "webhook", "token": "https://hooks.example.com/fit?k=1"}, headers=me
    )
    assert resp.status == 201
    listed = await (await client.get(URL, headers=me)).json()
    assert [d["platform"] for d in listed["items"]] == ["fcm", "webhook"]
    assert (await client.delete(f"{URL}/{device['id']}", headers=me)).status == 204
    assert (await client.delete(f"{URL}/{device['id']}", headers=me)).status == 404
    listed = await (await client.get(URL, headers=me)).json()
    assert [d["platform"] for d in listed["items"]] == ["webhook"]


async def test_registering_again_is_idempotent_and_a_token_moves_between_users(
    make_delivery_client: MakeDeliveryClient,
) -> None:
    client = await make_delivery_client()
    alice, bob = await user(client), await user(client)
    first = await (await client.post(URL, json={"platform": "fcm", "token": FCM}, headers=alice)).json()
    again = await client.post(URL, json={"platform": "fcm", "token": FCM, "name": "renamed"}, headers=alice)
    assert again.status == 201
    assert (await again.json())["id"] == first["id"] and (await again.json())["name"] == "renamed"
    assert len((await (await client.get(URL, headers=alice)).json())["items"]) == 1
    # The phone changed hands: the token now belongs to Bob only.
    moved = await (await client.post(URL, json={"platform": "fcm", "token": FCM}, headers=bob)).json()
    assert moved["id"] == first["id"]
    assert (await (await client.get(URL, headers=alice)).json())["items"] == []
    assert [d["id"] for d in (await (await client.get(URL, headers=bob)).json())["items"]] == [first["id"]]
    # Alice can no longer delete it: not hers.
    assert (await client.delete(f"{URL}/{first['id']}", headers=alice)).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "webhook", "token": "ftp://example.com/x"}, "token"),
        ({"platform": "webhook", "token": "http://hooks.example.com/x"}, "token"),  # http off loopback
        ({"platform": "webhook", "token": "https://user:pw@example.com/x"}, "token"),
        ({"platform": "webhook", "token": "https://"}, "token"),
        ({"platform": "apns", "token": "xyz" * 30}, "token"),
        ({"platform": "apns", "token": "ab" * 10}, "token"),
        ({"platform": "fcm", "token": "short"}, "token"),
        ({"platform": "fcm", "token": "has spaces " * 5}, "token"),
        ({"platform": "fcm", "token": "x" * 4097}, "token"),
        ({"platform": "carrier-pigeon", "token": "x" * 40}, "platform"),
        ({"platform": "webpush", "token": "https://push.example.com/x"}, "platform"),  # not built in
        ({"platform": "FCM", "token": FCM}, "platform"),
        ({"platform": "fcm"}, "token"),
        ({"platform": "fcm", "token": FCM, "owner": "someone"}, "owner"),
        ({"platform": "fcm", "token": FCM, "name": ""}, "name"),
    ],
)
async def test_invalid_devices_are_422_with_the_field(
    make_delivery_client: MakeDeliveryClient, body: dict[str, Any], field: str
) -> None:
    client = await make_delivery_client()
    resp = await client.post(URL, json=body, headers=await user(client))
    assert resp.status == 422, await resp.text()
    problem = await resp.json()
    assert problem["errors"][0]["field"] == field
    assert (await (await client.get(URL, headers=await user(client))).json())["items"] == []


async def test_loopback_http_webhooks_and_plugin_platforms_are_accepted(
    make_delivery_client: MakeDeliveryClient,
) -> None:
    client = await make_delivery_client()
    me = await user(client)
    for body in (
        {"platform": "webhook", "token": "http://127.0.0.1:8080/hook"},
        {"platform": "webhook", "token": "http://localhost/hook"},
        {"platform": "webhook", "token": "http://[::1]:9/hook"},
        {"platform": "pigeon", "token": "loft-7"},  # added by a plug-in through the hook
        {"platform": "apns", "token": "0f" * 32},
    ):
        resp = await client.post(URL, json=body, headers=me)
        assert resp.status == 201, (body, await resp.text())


async def test_auth_limits_and_malformed_bodies(make_delivery_client: MakeDeliveryClient) -> None:
    client = await make_delivery_client(max_devices_per_user=2)
    me = await user(client)
    assert (await client.get(URL)).status == 401
    assert (await client.post(URL, json={"platform": "fcm", "token": FCM})).status == 401
    assert (await client.delete(f"{URL}/whatever")).status == 401
    assert (await client.post(URL, data="nope", headers=me)).status == 415
    assert (
        await client.post(URL, data="{", headers={**me, "Content-Type": "application/json"})
    ).status == 400
    for n in range(2):
        resp = await client.post(URL, json={"platform": "pigeon", "token": f"loft-{n}"}, headers=me)
        assert resp.status == 201
    resp = await client.post(URL, json={"platform": "pigeon", "token": "loft-9"}, headers=me)
    assert resp.status == 409 and "2 active devices" in (await resp.json())["detail"]
    # Re-registering one you already have is not a new device.
    assert (await client.post(URL, json={"platform": "pigeon", "token": "loft-1"}, headers=me)).status == 201


async def test_openapi_describes_the_devices_endpoints(make_delivery_client: MakeDeliveryClient) -> None:
    client = await make_delivery_client()
    spec = await (await client.get("/api/v1/openapi.json")).json()
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "notifications_register_device",
        "notifications_list_devices",
        "notifications_delete_device",
    } <= ops
    assert {"DeviceCreate", "DeviceOut", "DeviceList"} <= set(spec["components"]["schemas"])


async def test_the_notifications_plugin_serves_devices_and_delivers_to_them(make_client: MakeClient) -> None:
    """The real plug-in: its Dispatcher sits on the app and sends in the background."""
    client = await make_client(
        plugins=["users", "notifications"],
        config={"users": dict(FAST_HASHING), "notifications": {"delivery_poll_interval_s": 0.05}},
    )
    body = await register(client)
    me = auth(body["access_token"])
    resp = await client.post(URL, json={"platform": "apns", "token": "0a" * 32, "name": "iPhone"}, headers=me)
    assert resp.status == 201, await resp.text()
    sub = next(app for app in client.app._subapps if DISPATCHER in app)  # the plug-in's sub-app
    dispatcher = sub[DISPATCHER]
    assert not {"fcm", "apns", "webhook"} & dispatcher.platforms  # none is configured here
    await dispatcher.enqueue(
        {
            "id": "n-real",
            "user_id": body["user"]["id"],
            "category": "system",
            "title": "t",
            "body": "b",
            "data": {},
        },
        ["push"],
        None,
    )
    for _ in range(100):
        [record] = await dispatcher.for_notification("n-real")
        if record["state"] != "queued":
            break
        await asyncio.sleep(0.02)
    assert (record["state"], record["last_error"]) == (
        "failed",
        "no push provider is configured for platform 'apns'",
    )
