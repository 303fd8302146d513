"""A crash between a workout write and its derived data is repaired at the next start."""

from __future__ import annotations

from pathlib import Path

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
