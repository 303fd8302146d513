"""Preferences: defaults, partial updates, validation, and what notify() does with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from tests.notifications.live_helpers import INBOX, member, state_of

PREFS = "/api/v1/notifications/preferences"


class FakeDispatcher:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], list[str], str | None]] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(
        self, notification: dict[str, Any], channels: list[str], not_before: str | None
    ) -> None:
        self.calls.append((notification, channels, not_before))


async def test_defaults_and_partial_updates(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    prefs = await (await live_client.get(PREFS, headers=ada.headers)).json()
    assert prefs["categories"]["achievements"] == {"in_app": True, "push": True, "email": False}
    assert prefs["categories"]["system"] == {"in_app": True, "push": False, "email": True}
    assert (
        prefs["quiet_hours"] is None and prefs["timezone"] == "UTC" and prefs["timezone_source"] == "default"
    )

    resp = await live_client.patch(
        "/api/v1/profiles/me", headers=ada.headers, json={"timezone": "Asia/Tokyo"}
    )
    assert resp.status == 200
    body = {"categories": {"social": {"push": False}}, "quiet_hours": {"start": "22:00", "end": "07:00"}}
    for _ in range(100):  # the profile's time zone arrives through the bus
        prefs = await (await live_client.put(PREFS, headers=ada.headers, json=body)).json()
        if prefs["timezone_source"] == "profile":
            break
    assert prefs["timezone"] == "Asia/Tokyo"
    assert prefs["categories"]["social"] == {"in_app": True, "push": False, "email": False}
    assert prefs["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    prefs = await (
        await live_client.put(PREFS, headers=ada.headers, json={"timezone": "Europe/Paris"})
    ).json()
    assert prefs["timezone"] == "Europe/Paris" and prefs["quiet_hours"] is not None  # kept
    prefs = await (await live_client.put(PREFS, headers=ada.headers, json={"quiet_hours": None})).json()
    assert prefs["quiet_hours"] is None


async def test_validation(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    cases = [
        ({"categories": {"marketing": {"push": True}}}, "categories.marketing"),
        ({"categories": {"social": {"sms": True}}}, "categories.social.sms"),
        ({"categories": {"social": {"push": "yes"}}}, "categories.social.push"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"colour": "blue"}, "colour"),
    ]
    for body, field in cases:
        resp = await live_client.put(PREFS, headers=ada.headers, json=body)
        assert resp.status == 422, body
        fields = [e["field"] for e in (await resp.json())["errors"]]
        assert any(f == field or f.startswith(field + ".") for f in fields), (body, fields)
    assert (await live_client.put(PREFS, headers=ada.headers, data="{")).status in (400, 415)
    assert (await live_client.get(PREFS)).status == 401


async def test_channels_follow_preferences_and_quiet_hours_defer(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    notifier = state_of(live_client).notifier
    fake = FakeDispatcher()
    notifier.dispatcher = fake
    body = {
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "timezone": "Europe/Paris",
        "categories": {"coaching": {"in_app": False}, "social": {"in_app": False, "push": False}},
    }
    assert (await live_client.put(PREFS, headers=ada.headers, json=body)).status == 200

    notifier.clock = lambda: datetime(2025, 1, 10, 23, 30, tzinfo=UTC)  # 00:30 in Paris: quiet
    item = await notifier.notify(ada.user_id, category="achievements", type="a", title="t", body="b")
    assert item is not None and item["stream_id"]
    (notification, channels, not_before) = fake.calls[-1]
    assert channels == ["push"] and notification["id"] == item["id"]
    assert not_before == "2025-01-11T06:00:00.000+00:00"  # 07:00 in Paris

    notifier.clock = lambda: datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    await notifier.notify(ada.user_id, category="reminders", type="r", title="t", body="b")
    assert fake.calls[-1][1:] == (["push", "email"], None)

    tip = await notifier.notify(ada.user_id, category="coaching", type="c", title="t", body="b")
    assert tip is not None and "stream_id" not in tip  # push only: not in the inbox
    assert await notifier.notify(ada.user_id, category="social", type="s", title="t", body="b") is None
    inbox = await (await live_client.get(INBOX, headers=ada.headers)).json()
    assert [i["type"] for i in inbox["items"]] == ["r", "a"]


async def test_idempotency_keys(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    notifier = state_of(live_client).notifier
    fake = FakeDispatcher()
    notifier.dispatcher = fake
    kw: dict[str, Any] = {"category": "achievements", "type": "a", "title": "t", "body": "b"}
    first = await notifier.notify(ada.user_id, idempotency_key="k1", **kw)
    again = await notifier.notify(ada.user_id, idempotency_key="k1", **kw)
    assert first == again and len(fake.calls) == 1
    other = await notifier.notify(ada.user_id, idempotency_key="k2", **kw)
    assert other is not None and first is not None and other["id"] != first["id"]
    # after the TTL the key is fresh again
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    notifier.clock = lambda: later
    newer = await notifier.notify(ada.user_id, idempotency_key="k1", **kw)
    assert newer is not None and newer["id"] != first["id"]
    inbox = await (await live_client.get(INBOX, headers=ada.headers)).json()
    assert len(inbox["items"]) == 3


async def test_stream_only_notifications_are_their_own_claim(live_client: TestClient[Any, Any]) -> None:
    """Progress goes only to the stream: no claim is kept, and a repeat (a redelivered event)
    finds the stored entry, announces it again and adds nothing."""
    ada = await member(live_client)
    notifier = state_of(live_client).notifier
    kw: dict[str, Any] = {"category": "progress", "type": "workout.set_logged", "title": "Set", "body": "b"}
    first = await notifier.notify(ada.user_id, idempotency_key="e1:progress", **kw)
    again = await notifier.notify(ada.user_id, idempotency_key="e1:progress", **kw)
    assert first is not None and first == again
    assert await notifier.claims.count({}) == 0
    stream = notifier.stream.entries
    assert await stream.count({"user_id": ada.user_id, "type": "workout.set_logged"}) == 1
    other = await notifier.notify(ada.user_id, idempotency_key="e2:progress", **kw)
    assert other is not None and other["id"] != first["id"]
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    notifier.clock = lambda: later  # after the TTL the key is fresh again, as with a claim
    newer = await notifier.notify(ada.user_id, idempotency_key="e1:progress", **kw)
    assert newer is not None and newer["id"] not in (first["id"], other["id"])
    assert await stream.count({"user_id": ada.user_id, "type": "workout.set_logged"}) == 3
