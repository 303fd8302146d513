"""A crash between a workout write and its derived data is repaired at the next start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fittracker_plugins.workouts.derived import Derived
from fittracker_plugins.workouts.workouts_store import WorkoutStore, new_id, now_iso

from fittracker.runtime import RUNTIME
from tests.conftest import MakeClient
from tests.workouts.conftest import library_config, signed_in
from tests.workouts.workout_helpers import BENCH, PROGRESS, get_json, log, start


async def test_interrupted_set_is_rederived_on_restart(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    client = await make_client(plugins=["users", "workouts"], config=library_config(), data_dir=data_dir)
    who = await signed_in(client)
    workout = await start(client, who)
    await log(client, who, workout["id"], BENCH, reps=5, weight_kg=100)

    # The first step of logging a heavier set, then "the process dies": nothing derived.
    store = WorkoutStore(client.app[RUNTIME].contexts["workouts"].db)
    item = {
        "id": new_id(),
        "exercise_id": BENCH,
        "reps": 3,
        "weight_kg": 120.0,
        "rpe": None,
        "duration_s": None,
        "distance_m": None,
        "set_type": "normal",
        "logged_at": now_iso(),
        "updated_at": now_iso(),
    }
    assert await store.push_set(who.user_id, workout["id"], item, 300) is not None
    records = await get_json(client, who, f"{PROGRESS}/records", exercise_id=BENCH)
    heaviest = {r["record_type"]: r for r in records["items"]}["heaviest_weight"]
    assert heaviest["value"] == 100  # behind the workout until repaired
    await client.close()

    restarted = await make_client(plugins=["users", "workouts"], config=library_config(), data_dir=data_dir)
    records = await get_json(restarted, who, f"{PROGRESS}/records", exercise_id=BENCH)
    heaviest = {r["record_type"]: r for r in records["items"]}["heaviest_weight"]
    assert heaviest["value"] == 120
    history = await get_json(restarted, who, f"{PROGRESS}/exercises/{BENCH}")
    assert history["sessions"][0]["sets"] == 2
    assert await WorkoutStore(restarted.app[RUNTIME].contexts["workouts"].db).stale() == []


async def test_marked_weeks_are_rebuilt_soon_before_reads_and_at_start(
    make_client: MakeClient, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    client = await make_client(plugins=["users", "workouts"], config=library_config(), data_dir=data_dir)
    db = client.app[RUNTIME].contexts["workouts"].db
    derived = Derived(db, WorkoutStore(db))  # the plug-in's collections, read from outside
    who = await signed_in(client)
    workout = await start(client, who)
    await log(client, who, workout["id"], BENCH, reps=5, weight_kg=100)
    assert await derived.dirty.count({"user_id": who.user_id}) == 1  # marked, not rebuilt yet

    # Without any read, the background rebuild catches up and removes the marker.
    for _ in range(100):
        if await derived.dirty.count({"user_id": who.user_id}) == 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the marked week was never rebuilt")
    assert [w["work_sets"] for w in await derived.weeks.find({"user_id": who.user_id})] == [1]

    # A read rebuilds at once: the user sees their own set before the background catches up.
    await log(client, who, workout["id"], BENCH, reps=5, weight_kg=100)
    assert (await get_json(client, who, f"{PROGRESS}/summary"))["sets"] == 2

    # A week left marked and out of date (the process died before rebuilding it) is rebuilt
    # at the next start.
    await derived.weeks.update_many({"user_id": who.user_id}, {"$set": {"work_sets": 0}})
    week = (await derived.weeks.find({"user_id": who.user_id}))[0]["week_start"]
    await derived.dirty.insert_one(
        {"_id": f"{who.user_id}:{week}", "user_id": who.user_id, "monday": week, "changes": 1}
    )
    await client.close()
    restarted = await make_client(plugins=["users", "workouts"], config=library_config(), data_dir=data_dir)
    db = restarted.app[RUNTIME].contexts["workouts"].db
    derived = Derived(db, WorkoutStore(db))
    assert await derived.dirty.count({}) == 0
    assert [w["work_sets"] for w in await derived.weeks.find({"user_id": who.user_id})] == [2]
