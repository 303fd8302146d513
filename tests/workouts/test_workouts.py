"""Workout logging: start, sets (validation, units, edits), finish, discard, delete, list, events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.workouts.conftest import LogbookEventRecorder, signed_in
from tests.workouts.workout_helpers import BENCH, CURL, SQUAT, WORKOUTS, Client, finish, get_json, log, start


async def test_start_log_and_get(logbook_client: Client, logbook_events: LogbookEventRecorder) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me, name="Push day", notes="felt strong")
    assert workout["status"] == "in_progress"
    assert workout["sets"] == [] and workout["plan"] is None and workout["summary"] is None
    logged = await log(logbook_client, me, workout["id"], BENCH, 5, weight_kg=100, rpe=8.5, set_type="normal")
    assert logged["weight_kg"] == 100 and logged["reps"] == 5 and logged["rpe"] == 8.5
    assert "weight" not in logged and "units" not in logged  # kg users see kg only
    warm = await log(logbook_client, me, workout["id"], BENCH, 10, weight_kg=40, set_type="warmup")
    assert warm["records"] == []
    body = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}")
    assert [s["id"] for s in body["sets"]] == [logged["id"], warm["id"]]
    assert body["set_count"] == 2
    assert body["volume_kg"] == 500  # the warm-up does not count

    started = await logbook_events.wait_for("workout.started")
    assert started.data["user_id"] == me.user_id and started.data["workout_id"] == workout["id"]
    assert started.data["started_at"] == workout["started_at"] and started.data["routine_id"] is None
    event = await logbook_events.wait_for("workout.set_logged", lambda e: e.data["set"]["id"] == logged["id"])
    assert event.data["set"]["weight_kg"] == 100 and event.data["set"]["rpe"] == 8.5
    assert event.data["exercise"] == {
        "id": BENCH,
        "name": "Barbell Bench Press - Medium Grip",
        "category": "strength",
        "force": "push",
        "mechanic": "compound",
        "equipment": "barbell",
        "primary_muscles": ["chest"],
        "secondary_muscles": ["shoulders", "triceps"],
    }


async def test_pounds_in_and_out(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    resp = await logbook_client.post(
        f"{WORKOUTS}/{workout['id']}/sets?units=lb",
        json={"exercise_id": BENCH, "reps": 3, "weight_lb": 225},
        headers=me.headers,
    )
    assert resp.status == 201
    logged = await resp.json()
    assert logged["weight_kg"] == 102.0583  # 225 x 0.45359237 = 102.05828325, to 4 decimals
    assert logged["weight"] == 225.0 and logged["units"] == "lb"
    shown = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}", units="lb")
    assert shown["sets"][0]["weight"] == 225.0 and shown["sets"][0]["weight_kg"] == 102.0583
    assert shown["volume_lb"] == 675.0 and shown["units"] == "lb"
    # The profile unit applies when ?units= is absent.
    resp = await logbook_client.patch("/api/v1/profiles/me", json={"units": "lb"}, headers=me.headers)
    assert resp.status == 200
    for _ in range(100):
        shown = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}")
        if shown["sets"][0].get("units") == "lb":
            break
        await asyncio.sleep(0.02)
    assert shown["sets"][0]["weight"] == 225.0
    kg = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}", units="kg")
    assert "weight" not in kg["sets"][0]


BAD_SETS: list[tuple[dict[str, Any], str]] = [
    ({"reps": -1, "weight_kg": 10}, "reps"),
    ({"reps": 1001, "weight_kg": 10}, "reps"),
    ({"reps": "5", "weight_kg": 10}, "reps"),
    ({"reps": 5, "weight_kg": 1000.5}, "weight_kg"),
    ({"reps": 5, "weight_kg": -1}, "weight_kg"),
    ({"reps": 5, "weight_lb": 2205}, "weight_lb"),  # 1000.17 kg once converted
    ({"reps": 5}, "body"),
    ({"reps": 5, "weight_kg": 10, "weight_lb": 22}, "body"),
    ({"reps": 5, "weight_kg": 10, "rpe": 0.5}, "rpe"),
    ({"reps": 5, "weight_kg": 10, "rpe": 10.5}, "rpe"),
    ({"reps": 5, "weight_kg": 10, "rpe": 7.3}, "rpe"),
    ({"reps": 5, "weight_kg": 10, "duration_s": -1}, "duration_s"),
    ({"reps": 5, "weight_kg": 10, "duration_s": 90_000}, "duration_s"),
    ({"reps": 5, "weight_kg": 10, "distance_m": -0.1}, "distance_m"),
    ({"reps": 5, "weight_kg": 10, "distance_m": 2_000_000}, "distance_m"),
    ({"reps": 5, "weight_kg": 10, "set_type": "giant"}, "set_type"),
    ({"reps": 5, "weight_kg": 10, "tempo": "3-1-1"}, "tempo"),
    ({"exercise_id": "No_Such_Exercise", "reps": 5, "weight_kg": 10}, "exercise_id"),
]


async def test_set_validation(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    for body, field in BAD_SETS:
        resp = await logbook_client.post(
            f"{WORKOUTS}/{workout['id']}/sets", json={"exercise_id": BENCH, **body}, headers=me.headers
        )
        assert resp.status == 422, (body, await resp.text())
        problem = await resp.json()
        assert resp.content_type == "application/problem+json"
        assert any(e["field"] == field for e in problem["errors"]), (body, problem)
    assert (await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}"))["sets"] == []


async def test_limits_of_a_set(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    edge = await log(logbook_client, me, workout["id"], BENCH, 1000, weight_kg=1000, rpe=1, duration_s=0)
    assert edge["weight_kg"] == 1000 and edge["reps"] == 1000
    body = await log(logbook_client, me, workout["id"], BENCH, 0, weight_lb=2204.62)
    assert body["weight_kg"] == 999.9988  # 2204.62 x 0.45359237


async def test_custom_exercises_are_private(logbook_client: Client) -> None:
    owner, other = await signed_in(logbook_client), await signed_in(logbook_client)
    resp = await logbook_client.post(
        "/api/v1/exercises",
        json={"name": "Sled Push", "category": "strength", "primary_muscles": ["quadriceps"]},
        headers=owner.headers,
    )
    assert resp.status == 201, await resp.text()
    custom = (await resp.json())["id"]
    await log(logbook_client, owner, (await start(logbook_client, owner))["id"], custom, 10, weight_kg=80)
    workout = await start(logbook_client, other)
    resp = await logbook_client.post(
        f"{WORKOUTS}/{workout['id']}/sets",
        json={"exercise_id": custom, "reps": 10, "weight_kg": 80},
        headers=other.headers,
    )
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "exercise_id"


async def test_other_users_workouts_are_404(logbook_client: Client) -> None:
    owner, other = await signed_in(logbook_client), await signed_in(logbook_client)
    workout = await start(logbook_client, owner)
    item = await log(logbook_client, owner, workout["id"])
    wid, sid = workout["id"], item["id"]
    set_body = {"exercise_id": BENCH, "reps": 5, "weight_kg": 50}
    calls = [
        logbook_client.get(f"{WORKOUTS}/{wid}", headers=other.headers),
        logbook_client.patch(f"{WORKOUTS}/{wid}", json={"name": "mine"}, headers=other.headers),
        logbook_client.delete(f"{WORKOUTS}/{wid}", headers=other.headers),
        logbook_client.post(f"{WORKOUTS}/{wid}/sets", json=set_body, headers=other.headers),
        logbook_client.patch(f"{WORKOUTS}/{wid}/sets/{sid}", json={"reps": 1}, headers=other.headers),
        logbook_client.delete(f"{WORKOUTS}/{wid}/sets/{sid}", headers=other.headers),
        logbook_client.post(f"{WORKOUTS}/{wid}/finish", headers=other.headers),
        logbook_client.post(f"{WORKOUTS}/{wid}/discard", headers=other.headers),
        logbook_client.patch(f"{WORKOUTS}/{wid}/sets/nope", json={"reps": 1}, headers=owner.headers),
        logbook_client.get(f"{WORKOUTS}/nope", headers=owner.headers),
    ]
    for resp in await asyncio.gather(*calls):
        assert resp.status == 404, (resp.method, resp.url, await resp.text())
    assert (await get_json(logbook_client, owner, f"{WORKOUTS}/{wid}"))["sets"][0]["reps"] == 5
    resp = await logbook_client.get(WORKOUTS)
    assert resp.status == 401


async def test_edit_and_delete_sets(logbook_client: Client, logbook_events: LogbookEventRecorder) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    first = await log(logbook_client, me, workout["id"], BENCH, 5, weight_kg=100)
    second = await log(logbook_client, me, workout["id"], BENCH, 8, weight_kg=80, rpe=9)
    url = f"{WORKOUTS}/{workout['id']}/sets/{second['id']}"
    resp = await logbook_client.patch(
        url, json={"reps": 6, "weight_lb": 200, "rpe": None}, headers=me.headers
    )
    assert resp.status == 200, await resp.text()
    edited = await resp.json()
    assert edited["reps"] == 6 and edited["weight_kg"] == 90.7185 and edited["rpe"] is None
    for bad in (
        {"reps": None},
        {"weight_kg": 1001},
        {"exercise_id": "Nope"},
        {"weight_kg": 1, "weight_lb": 2},
    ):
        resp = await logbook_client.patch(url, json=bad, headers=me.headers)
        assert resp.status == 422, bad
    resp = await logbook_client.patch(url, json={"exercise_id": SQUAT}, headers=me.headers)
    assert (await resp.json())["exercise_id"] == SQUAT
    resp = await logbook_client.delete(f"{WORKOUTS}/{workout['id']}/sets/{first['id']}", headers=me.headers)
    assert resp.status == 204
    resp = await logbook_client.delete(f"{WORKOUTS}/{workout['id']}/sets/{first['id']}", headers=me.headers)
    assert resp.status == 404
    body = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}")
    assert [(s["exercise_id"], s["reps"], s["weight_kg"]) for s in body["sets"]] == [(SQUAT, 6, 90.7185)]
    deleted = await logbook_events.wait_for("workout.set_deleted")
    assert deleted.data["set"]["id"] == first["id"]
    updated = await logbook_events.wait_for("workout.set_updated")
    assert updated.data["set"]["id"] == second["id"]


async def test_finish_is_idempotent(logbook_client: Client, logbook_events: LogbookEventRecorder) -> None:
    me = await signed_in(logbook_client)
    start_at = datetime.now(UTC) - timedelta(hours=1)
    workout = await start(logbook_client, me, started_at=start_at.isoformat())
    await log(logbook_client, me, workout["id"], BENCH, 5, weight_kg=100)
    await log(logbook_client, me, workout["id"], BENCH, 10, weight_kg=60, set_type="warmup")
    await log(logbook_client, me, workout["id"], SQUAT, 5, weight_kg=140)
    summaries = await asyncio.gather(*(finish(logbook_client, me, workout["id"]) for _ in range(3)))
    summary = summaries[0]
    assert all(s == summary for s in summaries)
    again = await finish(logbook_client, me, workout["id"])
    assert again == summary
    assert summary["status"] == "finished" and summary["sets"] == 3 and summary["work_sets"] == 2
    assert summary["volume_kg"] == 1200  # 100x5 + 140x5, warm-up excluded
    assert 3590 <= summary["duration_s"] <= 3700
    bench = next(e for e in summary["exercises"] if e["exercise_id"] == BENCH)
    assert bench["best_set"]["e1rm"] == 116.67 and bench["sets"] == 2 and bench["work_sets"] == 1
    kinds = sorted((r["exercise_id"], r["record_type"]) for r in summary["records"])
    assert (BENCH, "session_volume") in kinds and (SQUAT, "heaviest_weight") in kinds
    completed = await logbook_events.wait_for("workout.completed")
    await asyncio.sleep(0.2)
    assert len(logbook_events.of_type("workout.completed")) == 1
    volume_records = [
        e for e in logbook_events.of_type("record.achieved") if e.data["record_type"] == "session_volume"
    ]
    assert len(volume_records) == 2
    data = completed.data
    assert (
        data["volume_kg"] == 1200 and len(data["sets"]) == 3 and data["duration_s"] == summary["duration_s"]
    )
    assert {e["id"] for e in data["exercises"]} == {BENCH, SQUAT}
    squat = next(e for e in data["exercises"] if e["id"] == SQUAT)
    assert squat["primary_muscles"] == ["quadriceps"] and "glutes" in squat["secondary_muscles"]
    assert data["records"] == summary["records"]
    # A finished workout takes no more sets; it cannot be discarded either.
    resp = await logbook_client.post(
        f"{WORKOUTS}/{workout['id']}/sets",
        json={"exercise_id": BENCH, "reps": 1, "weight_kg": 1},
        headers=me.headers,
    )
    assert resp.status == 409
    resp = await logbook_client.post(f"{WORKOUTS}/{workout['id']}/discard", headers=me.headers)
    assert resp.status == 409
    stored = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}")
    assert stored["status"] == "finished" and stored["summary"] == summary


async def test_discard(logbook_client: Client, logbook_events: LogbookEventRecorder) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    await log(logbook_client, me, workout["id"], CURL, 10, weight_kg=40)
    resp = await logbook_client.post(f"{WORKOUTS}/{workout['id']}/discard", headers=me.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "discarded"
    resp = await logbook_client.post(f"{WORKOUTS}/{workout['id']}/discard", headers=me.headers)
    assert resp.status == 200  # idempotent
    for call in (
        logbook_client.post(
            f"{WORKOUTS}/{workout['id']}/sets",
            json={"exercise_id": CURL, "reps": 1, "weight_kg": 1},
            headers=me.headers,
        ),
        logbook_client.post(f"{WORKOUTS}/{workout['id']}/finish", headers=me.headers),
    ):
        assert (await call).status == 409
    records = await get_json(logbook_client, me, "/api/v1/progress/records")
    assert records["items"] == []
    await logbook_events.wait_for("workout.discarded")
    assert len(logbook_events.of_type("workout.discarded")) == 1


async def test_max_sets_per_workout(make_client: Any) -> None:
    from tests.workouts.conftest import library_config

    client = await make_client(plugins=["users", "workouts"], config=library_config(max_sets_per_workout=3))
    me = await signed_in(client)
    workout = await start(client, me)
    for _ in range(3):
        await log(client, me, workout["id"])
    resp = await client.post(
        f"{WORKOUTS}/{workout['id']}/sets",
        json={"exercise_id": BENCH, "reps": 1, "weight_kg": 1},
        headers=me.headers,
    )
    assert resp.status == 409
    assert "at most 3" in (await resp.json())["detail"]


async def test_concurrent_sets_lose_nothing(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    results = await asyncio.gather(
        *(log(logbook_client, me, workout["id"], CURL, 1 + i % 12, weight_kg=20 + i) for i in range(50))
    )
    body = await get_json(logbook_client, me, f"{WORKOUTS}/{workout['id']}")
    assert len(body["sets"]) == 50 and body["set_count"] == 50
    assert {s["id"] for s in body["sets"]} == {r["id"] for r in results}
    history = await get_json(logbook_client, me, f"/api/v1/progress/exercises/{CURL}")
    assert history["sessions"][0]["sets"] == 50  # the derived session saw every set


async def test_update_and_delete_workout(
    logbook_client: Client, logbook_events: LogbookEventRecorder
) -> None:
    me = await signed_in(logbook_client)
    workout = await start(logbook_client, me)
    await log(logbook_client, me, workout["id"])
    url = f"{WORKOUTS}/{workout['id']}"
    earlier = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    resp = await logbook_client.patch(
        url, json={"name": "Morning", "notes": "ok", "started_at": earlier.isoformat()}, headers=me.headers
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["name"] == "Morning" and datetime.fromisoformat(body["started_at"]) == earlier
    for bad in ({"name": ""}, {"started_at": "1999-12-31T00:00:00Z"}, {"status": "finished"}):
        assert (await logbook_client.patch(url, json=bad, headers=me.headers)).status == 422
    resp = await logbook_client.delete(url, headers=me.headers)
    assert resp.status == 204
    assert (await logbook_client.get(url, headers=me.headers)).status == 404
    assert (await logbook_client.delete(url, headers=me.headers)).status == 404
    event = await logbook_events.wait_for("workout.deleted")
    assert event.data["workout_id"] == workout["id"] and event.data["exercise_ids"] == [BENCH]


async def test_list_by_date_range_and_pages(logbook_client: Client) -> None:
    me, other = await signed_in(logbook_client), await signed_in(logbook_client)
    base = datetime(2024, 3, 1, 18, 0, tzinfo=UTC)
    ids = []
    for day in range(6):  # 2024-03-01 .. 2024-03-06
        workout = await start(logbook_client, me, started_at=(base + timedelta(days=day)).isoformat())
        ids.append(workout["id"])
    await finish(logbook_client, me, ids[2])
    await start(logbook_client, other, started_at=base.isoformat())
    everything = await get_json(logbook_client, me, WORKOUTS)
    assert [w["id"] for w in everything["items"]] == ids[::-1] and everything["next_cursor"] is None
    march: dict[str, Any] = {"from": "2024-03-02", "to": "2024-03-04"}
    ranged = await get_json(logbook_client, me, WORKOUTS, **march)
    assert [w["id"] for w in ranged["items"]] == [ids[3], ids[2], ids[1]]
    done = await get_json(logbook_client, me, WORKOUTS, status="finished")
    assert [w["id"] for w in done["items"]] == [ids[2]]
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = await get_json(logbook_client, me, WORKOUTS, **params)
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    for bad in (
        {"cursor": "garbage"},
        {"from": "yesterday"},
        {"status": "paused"},
        {"limit": 0},
        {"sort": "x"},
    ):
        await get_json(logbook_client, me, WORKOUTS, expect=422, **bad)


async def test_start_validation(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for bad in (
        {"started_at": future},
        {"day_index": 1},
        {"routine_id": "nope"},
        {"name": "x" * 101},
        {"unknown": 1},
    ):
        resp = await logbook_client.post(WORKOUTS, json=bad, headers=me.headers)
        assert resp.status == 422, bad


async def test_start_from_a_routine_day(logbook_client: Client, logbook_events: LogbookEventRecorder) -> None:
    me = await signed_in(logbook_client)
    routine = {
        "name": "Split",
        "days": [
            {"name": "Push", "exercises": [{"exercise_id": BENCH, "sets": 3, "reps": 5, "weight_kg": 80}]},
            {"name": "Legs", "exercises": [{"exercise_id": SQUAT, "sets": 5, "reps_min": 3, "reps_max": 5}]},
        ],
    }
    resp = await logbook_client.post("/api/v1/routines", json=routine, headers=me.headers)
    assert resp.status == 201, await resp.text()
    routine_id = (await resp.json())["id"]
    workout = await start(logbook_client, me, routine_id=routine_id, day_index=1)
    plan = workout["plan"]
    assert plan["routine_id"] == routine_id and plan["day_index"] == 1 and plan["day_name"] == "Legs"
    assert [(e["exercise_id"], e["sets"], e["reps_min"], e["reps_max"]) for e in plan["exercises"]] == [
        (SQUAT, 5, 3, 5)
    ]
    assert workout["name"] == "Split - Legs" and workout["routine_id"] == routine_id
    event = await logbook_events.wait_for("workout.started", lambda e: e.data["workout_id"] == workout["id"])
    assert event.data["routine_id"] == routine_id
    routine_now = await get_json(logbook_client, me, f"/api/v1/routines/{routine_id}")
    assert routine_now["uses"] == 1
    resp = await logbook_client.post(
        WORKOUTS, json={"routine_id": routine_id, "day_index": 2}, headers=me.headers
    )
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "day_index"
