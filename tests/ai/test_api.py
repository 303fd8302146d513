"""``/api/v1/ai`` end to end: the read model fed by the workouts plug-in's events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fittracker_plugins.ai.readmodel import TrainingLog

from fittracker import Event
from fittracker.storage import open_database
from tests.conftest import MakeClient
from tests.users.conftest import FAST_HASHING
from tests.workouts.conftest import SignedIn, signed_in
from tests.workouts.workout_helpers import BENCH, Client, log, start

AI = "/api/v1/ai"
CONFIG = {"users": dict(FAST_HASHING)}
PLUGINS = ["users", "workouts", "ai"]


async def wait_for_muscle(client: Client, who: SignedIn, muscle: str, sets: int = 3) -> dict[str, Any]:
    """Events reach the read model asynchronously: poll until ``muscle`` shows ``sets`` sets."""
    for _ in range(200):
        resp = await client.get(AI + "/recovery", headers=who.headers)
        assert resp.status == 200, await resp.text()
        found = {m["muscle"]: m for m in (await resp.json())["muscles"]}
        if muscle in found and found[muscle]["reason"].startswith(f"{muscle}: {sets} sets"):
            return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"{muscle} never reached {sets} sets in the recovery report")


async def log_bench_session(client: Client, who: SignedIn) -> None:
    workout = await start(client, who)
    for _ in range(3):
        await log(client, who, workout["id"], BENCH, reps=8, weight_kg=100)


async def test_recovery_and_progression_from_logged_sets(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    await log_bench_session(client, who)
    muscles = await wait_for_muscle(client, who, "chest")
    # 3 sets without RPE (counted as 7): chest 2.1 units -> 79 %, triceps half -> 89.5 %.
    assert muscles["chest"]["recovery_pct"] == pytest.approx(79.0, abs=0.1)
    assert muscles["triceps"]["recovery_pct"] == pytest.approx(89.5, abs=0.1)
    assert muscles["chest"]["reason"].startswith("chest: 3 sets in the last 7 days")

    resp = await client.get(f"{AI}/progression/{BENCH}", headers=who.headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    # 3 x 8 at 100 kg tops the 5-8 range; bench is upper body: +1.25 kg, back to 5 reps.
    assert body["target"] == {"weight": 101.25, "weight_kg": 101.25, "reps": 5, "sets": 3}
    assert body["method"] == "double_progression" and body["reason"]

    resp = await client.get(f"{AI}/progression/{BENCH}", headers=who.headers, params={"units": "lb"})
    assert (await resp.json())["target"]["weight"] == 222.5  # 223.2 lb on the 2.5 lb grid


async def test_progression_without_history_is_404(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    resp = await client.get(f"{AI}/progression/{BENCH}", headers=who.headers)
    assert resp.status == 404
    assert "no work sets" in (await resp.json())["detail"]
    resp = await client.get(AI + "/recovery", headers=who.headers, params={"bogus": "1"})
    assert resp.status == 422


async def test_recovery_needs_a_token(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    assert (await client.get(AI + "/recovery")).status == 401


async def test_read_model_is_rebuilt_from_the_event_log(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    first = await make_client(plugins=PLUGINS, config=CONFIG, data_dir=data_dir)
    who = await signed_in(first)
    await log_bench_session(first, who)
    await wait_for_muscle(first, who, "chest")
    await first.close()
    for path in data_dir.glob("ai.db*"):
        path.unlink()

    # The ai consumer group already acknowledged every event: only the replay can refill it.
    second = await make_client(plugins=PLUGINS, config=CONFIG, data_dir=data_dir)
    muscles = await wait_for_muscle(second, who, "chest")
    assert muscles["chest"]["reason"].startswith("chest: 3 sets")


def set_logged(event_id: str, set_id: str = "s1", workout_id: str = "w1") -> Event:
    item = {"id": set_id, "exercise_id": BENCH, "reps": 5, "weight_kg": 100.0, "rpe": 8, "set_type": "normal"}
    item["logged_at"] = "2026-03-01T10:00:00+00:00"
    exercise = {"id": BENCH, "name": "Bench", "primary_muscles": ["chest"], "secondary_muscles": ["triceps"]}
    data = {"user_id": "u1", "workout_id": workout_id, "set": item, "exercise": exercise}
    return Event(type="workout.set_logged", source="test", data=data, id=event_id)


async def test_redelivered_and_late_events_are_harmless(tmp_path: Path) -> None:
    db = open_database("sqlite", "ai", data_dir=tmp_path)
    try:
        log_ = TrainingLog(db)
        await log_.start()
        first = set_logged("e1")
        await log_.handle(first)
        await log_.handle(first)  # redelivered
        assert [s["_id"] for s in await log_.exercise_sets("u1", BENCH)] == ["s1"]

        deleted = Event(type="workout.set_deleted", source="test", data={**first.data}, id="e2")
        await log_.handle(deleted)
        await log_.handle(set_logged("e1"))  # a late redelivery must not resurrect the set
        await log_.handle(set_logged("e3"))  # nor a copy under another id
        assert await log_.exercise_sets("u1", BENCH) == []

        await log_.handle(set_logged("e4", set_id="s2", workout_id="w2"))
        gone = {"user_id": "u1", "workout_id": "w2"}
        await log_.handle(Event(type="workout.deleted", source="test", data=gone, id="e5"))
        await log_.handle(set_logged("e6", set_id="s3", workout_id="w2"))
        assert await log_.exercise_sets("u1", BENCH) == []
    finally:
        await db.close()


async def test_sessions_follow_sets_moves_and_deletions(tmp_path: Path) -> None:
    db = open_database("sqlite", "ai", data_dir=tmp_path)
    try:
        log_ = TrainingLog(db)
        await log_.start()
        since = datetime(2026, 1, 1, tzinfo=UTC)
        await log_.handle(set_logged("e1", set_id="s1", workout_id="w1"))
        await log_.handle(set_logged("e2", set_id="s2", workout_id="w1"))
        await log_.handle(set_logged("e3", set_id="s3", workout_id="w2"))
        assert await log_.familiar("u1", since) == {BENCH: 2}  # two workouts, three sets
        assert await log_.recent_exercises("u1", since) == [BENCH]

        moved = set_logged("e4", set_id="s3", workout_id="w2")
        moved.data["set"]["exercise_id"] = "Pullups"
        await log_.handle(Event(type="workout.set_updated", source="test", data=moved.data, id="e4"))
        assert await log_.familiar("u1", since) == {BENCH: 1, "Pullups": 1}

        gone = set_logged("e5", set_id="s1", workout_id="w1")
        await log_.handle(Event(type="workout.set_deleted", source="test", data=gone.data, id="e5"))
        assert await log_.familiar("u1", since) == {BENCH: 1, "Pullups": 1}  # s2 is still there
        gone = set_logged("e6", set_id="s2", workout_id="w1")
        await log_.handle(Event(type="workout.set_deleted", source="test", data=gone.data, id="e6"))
        assert await log_.familiar("u1", since) == {"Pullups": 1}
        await log_.handle(
            Event(type="workout.deleted", source="test", data={**gone.data, "workout_id": "w2"}, id="e7")
        )
        assert await log_.familiar("u1", since) == {}
    finally:
        await db.close()
