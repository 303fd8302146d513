"""The inbox: pagination, unread filter, mark read (one, all), count, read state pushed live."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.notifications.live_helpers import INBOX, WS, Member, member, of_type, receive, state_of, wait_for


async def seed(client: TestClient[Any, Any], who: Member, n: int) -> list[str]:
    ids = []
    for i in range(n):
        item = await state_of(client).notifier.notify(
            who.user_id, category="system", type="system.note", title=f"note {i}", body="hello"
        )
        assert item is not None
        ids.append(item["id"])
    return ids


async def test_pages_newest_first_with_an_unread_filter(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    ids = await seed(live_client, ada, 5)
    seen: list[str] = []
    cursor = None
    while True:
        url = f"{INBOX}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await live_client.get(url, headers=ada.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert (await live_client.post(f"{INBOX}/{ids[4]}/read", headers=ada.headers)).status == 200
    unread = await (await live_client.get(f"{INBOX}?unread=true", headers=ada.headers)).json()
    assert [i["id"] for i in unread["items"]] == ids[3::-1]
    count = await (await live_client.get(f"{INBOX}/unread-count", headers=ada.headers)).json()
    assert count == {"count": 4}
    for bad in ("limit=0", "limit=101", "cursor=%%%", "unread=maybe", "cursor=WyJ4Il0"):
        resp = await live_client.get(f"{INBOX}?{bad}", headers=ada.headers)
        assert resp.status == 422, bad
    assert (await live_client.get(INBOX)).status == 401


async def test_mark_read_is_idempotent_and_private(live_client: TestClient[Any, Any]) -> None:
    ada, bob = await member(live_client), await member(live_client)
    (note,) = await seed(live_client, ada, 1)
    resp = await live_client.post(f"{INBOX}/{note}/read", headers=ada.headers)
    first = await resp.json()
    assert resp.status == 200 and first["read_at"] is not None
    again = await (await live_client.post(f"{INBOX}/{note}/read", headers=ada.headers)).json()
    assert again["read_at"] == first["read_at"]
    assert (await live_client.post(f"{INBOX}/{note}/read", headers=bob.headers)).status == 404
    assert (await live_client.post(f"{INBOX}/nope/read", headers=ada.headers)).status == 404


async def test_read_state_is_pushed_to_other_connections(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    ids = await seed(live_client, ada, 3)
    async with live_client.ws_connect(WS, headers=ada.headers) as phone:
        await receive(phone)
        assert (await live_client.post(f"{INBOX}/{ids[0]}/read", headers=ada.headers)).status == 200
        read = await wait_for(phone, of_type("notification.read"))
        assert read["data"]["ids"] == [ids[0]] and read["data"]["all"] is False and read["id"]
        await phone.send_json({"type": "read", "id": ids[1]})  # from the socket itself
        assert (await wait_for(phone, of_type("notification.read")))["data"]["ids"] == [ids[1]]
        resp = await live_client.post(f"{INBOX}/read-all", headers=ada.headers)
        assert await resp.json() == {"updated": 1}
        assert (await wait_for(phone, of_type("notification.read")))["data"]["all"] is True
    count = await (await live_client.get(f"{INBOX}/unread-count", headers=ada.headers)).json()
    assert count == {"count": 0}
    assert await (await live_client.post(f"{INBOX}/read-all", headers=ada.headers)).json() == {"updated": 0}
