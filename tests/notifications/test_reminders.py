"""The inactivity reminder: armed by a completed workout, moved forward by the next, fired once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import MakeClient
from tests.notifications.live_helpers import LIVE_PLUGINS, Member, live_config, log_set, member, state_of
from tests.notifications.test_schedule import SCHEDULED, eventually, inbox

DAY_S = 86_400


async def work_out(client: TestClient[Any, Any], who: Member) -> None:
    workout_id = await log_set(client, who)
    resp = await client.post(f"/api/v1/workouts/{workout_id}/finish", headers=who.headers)
    assert resp.status == 200


async def reminders(client: TestClient[Any, Any], who: Member) -> list[dict[str, Any]]:
    items = (await (await client.get(SCHEDULED, headers=who.headers)).json())["items"]
    return [i for i in items if i["kind"] == "reminder"]


async def test_each_workout_moves_the_one_reminder_forward(make_client: MakeClient) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(reminder_after_days=2.0 / DAY_S))
    ada = await member(client, "Ada")
    await work_out(client, ada)
    armed: list[dict[str, Any]] = []

    async def armed_after(previous: str) -> bool:
        armed[:] = await reminders(client, ada)
        return len(armed) == 1 and armed[0]["state"] == "pending" and armed[0]["send_at"] > previous

    await eventually(lambda: armed_after(""))
    first = armed[0]
    assert first["category"] == "reminders" and "haven't trained in" in first["body"]
    last_workout = await state_of(client).ctx.db.collection("last_workouts").find_one({"_id": ada.user_id})
    assert last_workout is not None and first["data"]["last_workout_at"] == last_workout["last_workout_at"]

    await work_out(client, ada)
    await eventually(lambda: armed_after(first["send_at"]))
    moved = armed[0]
    assert moved["id"] == first["id"]  # one reminder per user, moved, not a second one

    async def reminded() -> bool:
        return any(i["category"] == "reminders" for i in await inbox(client, ada))

    await eventually(reminded, within=8)
    (note,) = [i for i in await inbox(client, ada) if i["category"] == "reminders"]
    assert note["type"] == "reminder.inactive" and note["title"] == "Time to train?"
    # it fired for the second workout's time, not the first's
    assert datetime.fromisoformat(note["created_at"]) >= datetime.fromisoformat(moved["send_at"])

    async def marked_sent() -> bool:
        return bool((await reminders(client, ada))[0]["state"] == "sent")

    await eventually(marked_sent)


async def test_zero_days_disables_the_reminder(make_client: MakeClient) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(reminder_after_days=0.0))
    ada = await member(client, "Ada")
    await work_out(client, ada)
    last = state_of(client).ctx.db.collection("last_workouts")

    async def seen() -> bool:
        return await last.find_one({"_id": ada.user_id}) is not None

    await eventually(seen)
    assert await reminders(client, ada) == []
