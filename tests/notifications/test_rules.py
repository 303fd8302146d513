"""Event rules: who hears about what, through the real users and workouts APIs and the bus."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications.rules import Rules

from fittracker.runtime import RUNTIME
from tests.notifications.live_helpers import (
    BENCH,
    INBOX,
    WS,
    Member,
    log_set,
    member,
    of_type,
    receive,
    state_of,
    wait_for,
)


async def inbox_of(client: TestClient[Any, Any], who: Member, expect: int) -> list[dict[str, Any]]:
    """The inbox once it holds ``expect`` items (rules run asynchronously, off the bus)."""
    items: list[dict[str, Any]] = []
    for _ in range(250):
        items = (await (await client.get(INBOX, headers=who.headers)).json())["items"]
        if len(items) >= expect:
            break
        await asyncio.sleep(0.02)
    return items


async def follow(client: TestClient[Any, Any], follower: Member, followee: Member) -> None:
    resp = await client.post(f"/api/v1/users/{followee.user_id}/follow", headers=follower.headers)
    assert resp.status == 204


async def test_followers_get_a_social_feed_of_records_and_workouts(live_client: TestClient[Any, Any]) -> None:
    ada, bob = await member(live_client, "Ada"), await member(live_client, "Bob")
    await follow(live_client, bob, ada)
    (new_follower,) = await inbox_of(live_client, ada, 1)
    assert (
        new_follower["type"] == "social.new_follower" and new_follower["body"] == "Bob started following you"
    )
    async with live_client.ws_connect(WS, headers=bob.headers) as feed:
        await receive(feed)
        workout_id = await log_set(live_client, ada)
        record = await wait_for(feed, of_type("notification", type="social.record"))
        assert record["data"]["title"] == "Ada set a personal record"
        assert record["data"]["data"]["user_id"] == ada.user_id
        assert (
            await live_client.post(f"/api/v1/workouts/{workout_id}/finish", headers=ada.headers)
        ).status == 200
        done = await wait_for(feed, of_type("notification", type="social.workout_completed"))
        assert done["data"]["category"] == "social" and done["data"]["title"] == "Ada finished a workout"
    # an unfollow stops the feed
    assert (
        await live_client.delete(f"/api/v1/users/{ada.user_id}/follow", headers=bob.headers)
    ).status == 204
    before = len(await inbox_of(live_client, bob, 0))
    async with live_client.ws_connect(WS, headers=ada.headers) as own:
        await receive(own)
        await log_set(live_client, ada, reps=20, weight_kg=150)
        await wait_for(own, of_type("notification", category="achievements"))
    await asyncio.sleep(0.3)
    assert len(await inbox_of(live_client, bob, 0)) == before


async def test_coach_tips_and_routine_ratings(live_client: TestClient[Any, Any]) -> None:
    ada, bob = await member(live_client, "Ada"), await member(live_client, "Bob")
    bus = live_client.app[RUNTIME].bus
    await bus.publish(
        "coach.tip",
        {"user_id": ada.user_id, "title": "Deload", "body": "Take it easy"},
        source="fittracker/ai",
    )
    body = {
        "name": "Mine",
        "days": [{"name": "A", "exercises": [{"exercise_id": BENCH, "sets": 3, "reps": 5}]}],
    }
    resp = await live_client.post(
        "/api/v1/routines", headers=ada.headers, json={**body, "visibility": "public"}
    )
    assert resp.status == 201, await resp.text()
    routine_id = (await resp.json())["id"]
    resp = await live_client.put(
        f"/api/v1/routines/{routine_id}/rating", headers=bob.headers, json={"stars": 4}
    )
    assert resp.status == 200, await resp.text()
    items = await inbox_of(live_client, ada, 2)
    by_type = {i["type"]: i for i in items}
    assert by_type["coaching.tip"]["category"] == "coaching" and by_type["coaching.tip"]["title"] == "Deload"
    rated = by_type["social.routine_rated"]
    assert rated["body"] == "Bob gave your routine 4 stars" and rated["data"]["routine_id"] == routine_id


async def test_a_redelivered_event_notifies_once(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client)
    bus = live_client.app[RUNTIME].bus
    event = await bus.publish(
        "coach.tip", {"user_id": ada.user_id, "body": "Sleep more"}, source="fittracker/ai"
    )
    await inbox_of(live_client, ada, 1)
    # the bus delivers at least once: run the rule again with the same event
    state = state_of(live_client)
    await Rules(state.notifier, state.directory, state.follows).on_coach_tip(event)
    assert len(await inbox_of(live_client, ada, 1)) == 1


async def test_users_directory_read_model(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client, "Ada")
    resp = await live_client.patch(
        "/api/v1/profiles/me", headers=ada.headers, json={"name": "Ada L.", "timezone": "Europe/Paris"}
    )
    assert resp.status == 200
    directory = state_of(live_client).directory
    doc = None
    for _ in range(250):
        doc = await directory.get(ada.user_id)
        if doc and doc.get("timezone"):
            break
        await asyncio.sleep(0.02)
    assert doc is not None
    assert set(doc) == {"_id", "email", "name", "timezone"}
    assert (
        doc["name"] == "Ada L."
        and doc["timezone"] == "Europe/Paris"
        and doc["email"].endswith("@example.com")
    )
