"""Personal records, hand-computed: detection, events, warm-ups, races, recompute after edits."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from fittracker_plugins.workouts.strength import e1rm, session_stats

from tests.workouts.conftest import LogbookEventRecorder, SignedIn, signed_in
from tests.workouts.workout_helpers import (
    BENCH,
    CURL,
    PROGRESS,
    WORKOUTS,
    Client,
    finish,
    get_json,
    log,
    start,
)


def test_epley_by_hand() -> None:
    assert e1rm(100, 5) == 116.67  # 100 x (1 + 5/30)
    assert e1rm(100, 1) == 100
    assert e1rm(90, 8) == 114.0  # 90 x 1.2667
    assert e1rm(100, 12) == 140.0
    assert e1rm(100, 13) is None and e1rm(100, 0) is None and e1rm(0, 5) is None


def test_session_stats_ignore_warmups() -> None:
    sets = [
        {"id": "a", "reps": 10, "weight_kg": 60, "set_type": "warmup", "logged_at": "t1"},
        {"id": "b", "reps": 5, "weight_kg": 100, "set_type": "normal", "logged_at": "t2"},
        {"id": "c", "reps": 8, "weight_kg": 80, "set_type": "drop", "logged_at": "t3"},
    ]
    stats = session_stats(sets)
    assert stats["volume_kg"] == 1140  # 500 + 640
    assert stats["work_sets"] == 2 and stats["sets"] == 3 and stats["reps"] == 13
    assert stats["best_set"] == {"set_id": "b", "weight_kg": 100, "reps": 5, "e1rm": 116.67}
    assert [(m["weight_kg"], m["value"]) for m in stats["most_reps"]] == [(80, 8), (100, 5)]


def kinds(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((r["record_type"], r["value"], r["previous"], r["weight_kg"]) for r in records)


async def current(client: Client, who: SignedIn, exercise_id: str = BENCH) -> dict[tuple[str, Any], Any]:
    body = await get_json(client, who, f"{PROGRESS}/records", exercise_id=exercise_id)
    return {(r["record_type"], r["weight_kg"]): r["value"] for r in body["items"]}


async def test_records_by_hand(logbook_client: Client, logbook_events: LogbookEventRecorder) -> None:
    me = await signed_in(logbook_client)
    w1 = (await start(logbook_client, me))["id"]
    first = await log(logbook_client, me, w1, BENCH, 5, weight_kg=100)
    assert kinds(first["records"]) == [
        ("best_e1rm", 116.67, None, None),
        ("heaviest_weight", 100, None, None),
        ("most_reps", 5, None, 100),
    ]
    assert (await log(logbook_client, me, w1, BENCH, 12, weight_kg=60, set_type="warmup"))["records"] == []
    # 90 x 8: e1RM 114.0 < 116.67, lighter: only a first at 90 kg.
    assert kinds((await log(logbook_client, me, w1, BENCH, 8, weight_kg=90))["records"]) == [
        ("most_reps", 8, None, 90)
    ]
    # 105 x 3: heavier (was 100); e1RM 115.5 < 116.67.
    assert kinds((await log(logbook_client, me, w1, BENCH, 3, weight_kg=105))["records"]) == [
        ("heaviest_weight", 105, 100, None),
        ("most_reps", 3, None, 105),
    ]
    # 100 x 6: e1RM 120.0 (was 116.67), 6 reps at 100 (was 5).
    assert kinds((await log(logbook_client, me, w1, BENCH, 6, weight_kg=100))["records"]) == [
        ("best_e1rm", 120.0, 116.67, None),
        ("most_reps", 6, 5, 100),
    ]
    # 80 x 15: no e1RM above 12 reps; a first at 80 kg.
    assert kinds((await log(logbook_client, me, w1, BENCH, 15, weight_kg=80))["records"]) == [
        ("most_reps", 15, None, 80)
    ]
    top = await log(logbook_client, me, w1, BENCH, 1, weight_kg=110)
    assert kinds(top["records"]) == [("heaviest_weight", 110, 105, None), ("most_reps", 1, None, 110)]
    assert (await log(logbook_client, me, w1, BENCH, 1, weight_kg=150, set_type="warmup"))["records"] == []
    # Session volume at finish: 500 + 720 + 315 + 600 + 1200 + 110 = 3445 (warm-ups excluded).
    summary = await finish(logbook_client, me, w1)
    assert summary["volume_kg"] == 3445
    by_type = {(r["record_type"], r["weight_kg"]): r for r in summary["records"]}
    assert by_type[("session_volume", None)]["value"] == 3445
    assert by_type[("heaviest_weight", None)]["value"] == 110
    assert by_type[("heaviest_weight", None)]["previous"] is None  # before this workout: none
    assert by_type[("most_reps", 100)]["value"] == 6 and by_type[("most_reps", 100)]["previous"] is None

    event = await logbook_events.wait_for(
        "record.achieved", lambda e: e.data["record_type"] == "best_e1rm" and e.data["value"] == 120.0
    )
    assert event.data == {
        "user_id": me.user_id,
        "workout_id": w1,
        "exercise_id": BENCH,
        "exercise_name": "Barbell Bench Press - Medium Grip",
        "record_type": "best_e1rm",
        "value": 120.0,
        "unit": "kg",
        "weight_kg": None,
        "previous": 116.67,
        "set_id": event.data["set_id"],
        "achieved_at": event.data["achieved_at"],
    }
    reps_event = await logbook_events.wait_for(
        "record.achieved", lambda e: e.data["record_type"] == "most_reps"
    )
    assert reps_event.data["unit"] == "reps"
    # Second workout: 4 x 100 x 10 = 4000 kg; e1RM 133.33.
    w2 = (await start(logbook_client, me))["id"]
    for _ in range(4):
        await log(logbook_client, me, w2, BENCH, 10, weight_kg=100)
    second = await finish(logbook_client, me, w2)
    assert kinds([r for r in second["records"] if r["record_type"] != "most_reps"]) == [
        ("best_e1rm", 133.33, 120.0, None),
        ("session_volume", 4000, 3445, None),
    ]
    held = await current(logbook_client, me)
    assert held == {
        ("heaviest_weight", None): 110,
        ("best_e1rm", None): 133.33,
        ("session_volume", None): 4000,
        ("most_reps", 80): 15,
        ("most_reps", 90): 8,
        ("most_reps", 100): 10,
        ("most_reps", 105): 3,
        ("most_reps", 110): 1,
    }
    # 12 announcements in workout 1 (11 from sets + volume), 3 in workout 2 (e1RM, 10 reps, volume).
    for _ in range(100):
        if len(logbook_events.of_type("record.achieved")) >= 15:
            break
        await asyncio.sleep(0.02)
    assert len(logbook_events.of_type("record.achieved")) == 15

    # Delete the 110 kg single: the heaviest falls back to 105 and w1's volume to 3335.
    resp = await logbook_client.delete(f"{WORKOUTS}/{w1}/sets/{top['id']}", headers=me.headers)
    assert resp.status == 204
    held = await current(logbook_client, me)
    assert held[("heaviest_weight", None)] == 105 and ("most_reps", 110) not in held
    # Delete workout 2: e1RM back to 120.0, volume to 3335, 6 reps at 100.
    assert (await logbook_client.delete(f"{WORKOUTS}/{w2}", headers=me.headers)).status == 204
    held = await current(logbook_client, me)
    assert held[("best_e1rm", None)] == 120.0
    assert held[("session_volume", None)] == 3335
    assert held[("most_reps", 100)] == 6
    # Editing 105 x 3 down to 95 x 3: the heaviest is now 100.
    w1_doc = await get_json(logbook_client, me, f"{WORKOUTS}/{w1}")
    heavy = next(s for s in w1_doc["sets"] if s["weight_kg"] == 105)
    resp = await logbook_client.patch(
        f"{WORKOUTS}/{w1}/sets/{heavy['id']}", json={"weight_kg": 95}, headers=me.headers
    )
    assert resp.status == 200
    held = await current(logbook_client, me)
    assert held[("heaviest_weight", None)] == 100 and held[("most_reps", 95)] == 3
    assert held[("session_volume", None)] == 3305  # 3335 - 105x3 + 95x3
    finished = await get_json(logbook_client, me, f"{WORKOUTS}/{w1}")
    assert finished["summary"]["volume_kg"] == 3305
    await asyncio.sleep(0.1)
    assert len(logbook_events.of_type("record.achieved")) == 15  # recomputes are silent


async def test_concurrent_record_sets_stay_consistent(
    logbook_client: Client, logbook_events: LogbookEventRecorder
) -> None:
    me = await signed_in(logbook_client)
    workout = (await start(logbook_client, me))["id"]
    weights = [40 + i for i in range(20)]
    results = await asyncio.gather(*(log(logbook_client, me, workout, CURL, 1, weight_kg=w) for w in weights))
    held = await current(logbook_client, me, CURL)
    assert held[("heaviest_weight", None)] == 59 and held[("best_e1rm", None)] == 59
    won = sorted(
        (r for res in results for r in res["records"] if r["record_type"] == "heaviest_weight"),
        key=lambda r: r["value"],
    )
    # Every improvement was announced once and chains onto the one before it.
    assert won[0]["previous"] is None and won[-1]["value"] == 59
    assert all(b["previous"] == a["value"] for a, b in itertools.pairwise(won))
    for _ in range(100):
        events = [
            e for e in logbook_events.of_type("record.achieved") if e.data["record_type"] == "heaviest_weight"
        ]
        if len(events) == len(won):
            break
        await asyncio.sleep(0.02)
    assert sorted(e.data["value"] for e in events) == [r["value"] for r in won]


async def test_records_in_pounds_and_filters(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    workout = (await start(logbook_client, me))["id"]
    await log(logbook_client, me, workout, BENCH, 5, weight_lb=225)
    await log(logbook_client, me, workout, CURL, 8, weight_kg=40)
    body = await get_json(logbook_client, me, f"{PROGRESS}/records", units="lb")
    assert body["units"] == "lb"
    bench = {r["record_type"]: r for r in body["items"] if r["exercise_id"] == BENCH}
    assert bench["heaviest_weight"]["value"] == 102.0583 and bench["heaviest_weight"]["value_lb"] == 225.0
    assert bench["most_reps"]["weight_lb"] == 225.0 and bench["most_reps"]["value"] == 5
    only_curl = await get_json(logbook_client, me, f"{PROGRESS}/records", exercise_id=CURL)
    assert {r["exercise_id"] for r in only_curl["items"]} == {CURL}
    other = await signed_in(logbook_client)
    assert (await get_json(logbook_client, other, f"{PROGRESS}/records"))["items"] == []


@pytest.mark.parametrize("set_type", ["drop", "failure"])
async def test_drop_and_failure_sets_count(logbook_client: Client, set_type: str) -> None:
    me = await signed_in(logbook_client)
    workout = (await start(logbook_client, me))["id"]
    logged = await log(logbook_client, me, workout, CURL, 6, weight_kg=30, set_type=set_type)
    assert ("best_e1rm", 36.0, None, None) in kinds(logged["records"])  # 30 x 1.2
