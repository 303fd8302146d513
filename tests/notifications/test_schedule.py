"""Scheduled sends: on time, after a restart, cancellable, once with two processes, validated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import MakeClient
from tests.notifications.live_helpers import (
    INBOX,
    LIVE_PLUGINS,
    WS,
    Member,
    live_config,
    member,
    of_type,
    receive,
    state_of,
    wait_for,
)
from tests.notifications.test_bulk import admin_headers

SCHEDULED = "/api/v1/notifications/scheduled"


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def message(send_at: str, **extra: Any) -> dict[str, Any]:
    return {"category": "system", "title": "Hello", "body": "Scheduled hello", "send_at": send_at, **extra}


async def schedule(client: TestClient[Any, Any], who: Member, send_at: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post(SCHEDULED, headers=who.headers, json=message(send_at, **extra))
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def inbox(client: TestClient[Any, Any], who: Member) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await (await client.get(INBOX, headers=who.headers)).json())["items"]
    return items


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_fires_within_a_second_of_its_time(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client, "Ada")
    async with live_client.ws_connect(WS, headers=ada.headers) as ws:
        await receive(ws)
        item = await schedule(live_client, ada, at(1.0), data={"k": "v"})
        assert item["state"] == "pending" and item["user_id"] == ada.user_id and item["kind"] == "send"
        got = await wait_for(ws, of_type("notification", type="scheduled"), timeout=5)
        lag = (datetime.now(UTC) - datetime.fromisoformat(item["send_at"])).total_seconds()
    assert 0 <= lag < 1.0, lag
    assert got["data"]["data"] == {"k": "v", "scheduled_id": item["id"]}

    async def recorded() -> bool:  # the item is marked sent just after the notification goes out
        (listed,) = (await (await live_client.get(SCHEDULED, headers=ada.headers)).json())["items"]
        return bool(listed["state"] == "sent" and listed["notification_id"] == got["data"]["id"])

    await eventually(recorded)


async def test_survives_a_restart(make_client: MakeClient, tmp_path: Path) -> None:
    first = await make_client(plugins=LIVE_PLUGINS, config=live_config(), data_dir=tmp_path / "shared")
    ada = await member(first, "Ada")
    item = await schedule(first, ada, at(1.5))
    await first.close()
    second = await make_client(plugins=LIVE_PLUGINS, config=live_config(), data_dir=tmp_path / "shared")

    async def fired() -> bool:
        (listed,) = (await (await second.get(SCHEDULED, headers=ada.headers)).json())["items"]
        return bool(listed["id"] == item["id"] and listed["state"] == "sent")

    await eventually(fired)
    assert [i["type"] for i in await inbox(second, ada)] == ["scheduled"]


async def test_cancel(live_client: TestClient[Any, Any]) -> None:
    ada, bob = await member(live_client, "Ada"), await member(live_client, "Bob")
    item = await schedule(live_client, ada, at(0.8))
    assert (await live_client.delete(f"{SCHEDULED}/{item['id']}", headers=bob.headers)).status == 404
    assert (await live_client.delete(f"{SCHEDULED}/{item['id']}", headers=ada.headers)).status == 204
    assert (await live_client.delete(f"{SCHEDULED}/{item['id']}", headers=ada.headers)).status == 204
    sent = await schedule(live_client, ada, at(0.3))
    await asyncio.sleep(1.3)
    assert [i["type"] for i in await inbox(live_client, ada)] == ["scheduled"]  # only the other one
    assert (await live_client.delete(f"{SCHEDULED}/{sent['id']}", headers=ada.headers)).status == 409
    states = await (await live_client.get(f"{SCHEDULED}?state=cancelled", headers=ada.headers)).json()
    assert [i["id"] for i in states["items"]] == [item["id"]]
    assert (await live_client.delete(f"{SCHEDULED}/nope", headers=ada.headers)).status == 404


async def test_two_processes_fire_each_item_once(make_client: MakeClient, tmp_path: Path) -> None:
    one = await make_client(plugins=LIVE_PLUGINS, config=live_config(), data_dir=tmp_path / "shared")
    two = await make_client(plugins=LIVE_PLUGINS, config=live_config(), data_dir=tmp_path / "shared")
    calls: list[tuple[str, str]] = []
    for name, client in (("one", one), ("two", two)):
        notifier = state_of(client).notifier
        real = notifier.notify

        async def counted(user_id: str, *, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append((_name, kw["idempotency_key"]))
            return await _real(user_id, **kw)

        notifier.notify = counted  # type: ignore[method-assign]
    ada = await member(one, "Ada")
    send_at = at(0.8)
    items = [await schedule(one if n % 2 else two, ada, send_at, title=f"#{n}") for n in range(12)]

    async def all_sent() -> bool:
        listed = (await (await one.get(f"{SCHEDULED}?limit=50", headers=ada.headers)).json())["items"]
        return all(i["state"] == "sent" for i in listed) and len(listed) == 12

    await eventually(all_sent, within=15.0)  # two processes on one file: slower on a busy machine
    await asyncio.sleep(0.6)  # both loops have had another look
    keys = [key for _name, key in calls if key.startswith("scheduled:")]
    assert sorted(keys) == sorted(f"scheduled:{i['id']}" for i in items)  # each fired exactly once
    titles = sorted(i["title"] for i in await inbox(one, ada))
    assert titles == sorted(f"#{n}" for n in range(12))


async def test_validation_and_access(live_client: TestClient[Any, Any]) -> None:
    ada, bob = await member(live_client, "Ada"), await member(live_client, "Bob")
    assert (await live_client.post(SCHEDULED, json=message(at(60)))).status == 401
    cases = [
        (message(at(-1)), "must be in the future"),
        (message(at(366 * 86400)), "at most one year"),
        (message("2030-01-01T08:00:00"), "UTC offset"),
        (message("tomorrow"), "ISO 8601"),
        ({**message(at(60)), "category": "progress"}, "category"),
        ({**message(at(60)), "title": ""}, "title"),
        # data the storage could not hold (was a 500 when the item was stored)
        ({**message(at(60)), "data": {"$where": "1"}}, "invalid key"),
        ({**message(at(60)), "data": {"k\u0000": 1}}, "invalid key"),
        ({**message(at(60)), "data": {"a": [[[[[[[[[1]]]]]]]]]}}, "levels deep"),
    ]
    for body, needle in cases:
        resp = await live_client.post(SCHEDULED, headers=ada.headers, json=body)
        assert resp.status == 422, body
        assert needle in str((await resp.json())["errors"]), (needle, await resp.json())
    own = await live_client.post(SCHEDULED, headers=ada.headers, json=message(at(60), user_id=ada.user_id))
    assert own.status == 201
    other = await live_client.post(SCHEDULED, headers=ada.headers, json=message(at(60), user_id=bob.user_id))
    assert other.status == 403
    assert (await live_client.get(f"{SCHEDULED}?all=true", headers=ada.headers)).status == 403

    admin = admin_headers(live_client)
    resp = await live_client.post(SCHEDULED, headers=admin, json=message(at(60), user_id=bob.user_id))
    assert resp.status == 201 and (await resp.json())["user_id"] == bob.user_id
    mine = (await (await live_client.get(SCHEDULED, headers=bob.headers)).json())["items"]
    assert [i["user_id"] for i in mine] == [bob.user_id]
    everyone = await (await live_client.get(f"{SCHEDULED}?all=true&limit=1", headers=admin)).json()
    assert len(everyone["items"]) == 1 and everyone["next_cursor"]
    rest = await live_client.get(f"{SCHEDULED}?all=true&cursor={everyone['next_cursor']}", headers=admin)
    assert len((await rest.json())["items"]) == 1
    # an admin may cancel anyone's
    assert (await live_client.delete(f"{SCHEDULED}/{mine[0]['id']}", headers=admin)).status == 204
