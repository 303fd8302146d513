"""Progress reports, hand-computed: per-exercise history, weekly muscle volume, summary, streak."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.workouts.conftest import SignedIn, signed_in
from tests.workouts.workout_helpers import (
    BENCH,
    CURL,
    PROGRESS,
    SQUAT,
    WORKOUTS,
    Client,
    finish,
    get_json,
    log,
    start,
)

PERIOD: dict[str, Any] = {"from": "2024-01-01", "to": "2024-01-21"}  # ISO weeks 2024-W01 .. W03


async def seed_january(client: Client, me: SignedIn) -> dict[str, str]:
    """Week 1: W1 (finished) bench 3x100x5 + warm-up, squat 2x140x5; W2 (open) curl 3x40x10.
    Week 2: nothing. Week 3: W3 (finished) bench 2x105x5; W4 discarded (bench 200x1)."""
    w1 = (await start(client, me, started_at="2024-01-01T10:00:00Z"))["id"]
    await log(client, me, w1, BENCH, 10, weight_kg=60, set_type="warmup")
    for _ in range(3):
        await log(client, me, w1, BENCH, 5, weight_kg=100)
    for _ in range(2):
        await log(client, me, w1, SQUAT, 5, weight_kg=140)
    await finish(client, me, w1)
    w2 = (await start(client, me, started_at="2024-01-03T18:30:00Z"))["id"]
    for _ in range(3):
        await log(client, me, w2, CURL, 10, weight_kg=40)
    w3 = (await start(client, me, started_at="2024-01-16T07:00:00Z"))["id"]
    for _ in range(2):
        await log(client, me, w3, BENCH, 5, weight_kg=105)
    await finish(client, me, w3)
    w4 = (await start(client, me, started_at="2024-01-17T07:00:00Z"))["id"]
    await log(client, me, w4, BENCH, 1, weight_kg=200)
    assert (await client.post(f"{WORKOUTS}/{w4}/discard", headers=me.headers)).status == 200
    return {"w1": w1, "w2": w2, "w3": w3, "w4": w4}


async def test_history_volume_and_summary_by_hand(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    ids = await seed_january(logbook_client, me)

    history = await get_json(logbook_client, me, f"{PROGRESS}/exercises/{BENCH}", **PERIOD)
    assert history["exercise"]["id"] == BENCH and history["exercise"]["primary_muscles"] == ["chest"]
    points = [
        (s["workout_id"], s["date"], s["e1rm"], s["volume_kg"], s["sets"], s["work_sets"], s["reps"])
        for s in history["sessions"]
    ]
    assert points == [
        (ids["w1"], "2024-01-01", 116.67, 1500, 4, 3, 15),  # 100 x (1 + 5/30); 3 x 500
        (ids["w3"], "2024-01-16", 122.5, 1050, 2, 2, 10),  # 105 x (1 + 5/30); 2 x 525
    ]
    assert history["sessions"][0]["best_set"]["weight_kg"] == 100 and history["sessions"][0]["finished"]
    latest = await get_json(logbook_client, me, f"{PROGRESS}/exercises/{BENCH}", limit=1)
    assert [s["workout_id"] for s in latest["sessions"]] == [ids["w3"]]
    in_lb = await get_json(logbook_client, me, f"{PROGRESS}/exercises/{BENCH}", units="lb", **PERIOD)
    assert in_lb["sessions"][1]["e1rm_lb"] == 270.07  # 122.5 / 0.45359237
    assert in_lb["sessions"][1]["best_set"]["weight_lb"] == 231.49

    volume = await get_json(logbook_client, me, f"{PROGRESS}/volume", **PERIOD)
    assert volume["from"] == "2024-01-01" and volume["to"] == "2024-01-21"
    assert [w["week"] for w in volume["weeks"]] == ["2024-W01", "2024-W02", "2024-W03"]
    week1 = {g["key"]: (g["volume_kg"], g["sets"]) for g in volume["weeks"][0]["groups"]}
    assert week1 == {
        "chest": (1500, 3),  # bench primary: 1.0
        "shoulders": (750, 1.5),  # bench secondary: 0.5
        "triceps": (750, 1.5),
        "quadriceps": (1400, 2),  # squat primary
        "calves": (700, 1),
        "glutes": (700, 1),
        "hamstrings": (700, 1),
        "lower back": (700, 1),
        "biceps": (1200, 3),  # curl (in-progress workouts count)
        "forearms": (600, 1.5),
    }
    assert volume["weeks"][0]["volume_kg"] == 4100 and volume["weeks"][0]["sets"] == 8
    assert volume["weeks"][1] == {
        "week": "2024-W02",
        "week_start": "2024-01-08",
        "volume_kg": 0,
        "sets": 0,
        "groups": [],
    }
    week3 = {g["key"]: (g["volume_kg"], g["sets"]) for g in volume["weeks"][2]["groups"]}
    assert week3 == {
        "chest": (1050, 2),
        "shoulders": (525, 1),
        "triceps": (525, 1),
    }  # the discarded 200 kg is gone
    totals = {g["key"]: (g["volume_kg"], g["sets"]) for g in volume["totals"]}
    assert totals["chest"] == (2550, 5) and totals["shoulders"] == (1275, 2.5)
    assert volume["volume_kg"] == 5150
    by_exercise = await get_json(logbook_client, me, f"{PROGRESS}/volume", group="exercise", **PERIOD)
    assert {g["key"]: g["volume_kg"] for g in by_exercise["totals"]} == {BENCH: 2550, SQUAT: 1400, CURL: 1200}

    summary = await get_json(logbook_client, me, f"{PROGRESS}/summary", **PERIOD)
    assert [(w["week"], w["started"], w["finished"], w["volume_kg"]) for w in summary["weeks"]] == [
        ("2024-W01", 2, 1, 4100),
        ("2024-W02", 0, 0, 0),
        ("2024-W03", 2, 1, 1050),  # W4 was started (then discarded)
    ]
    assert summary["started"] == 4 and summary["finished"] == 2
    assert summary["workouts_per_week"] == 0.67  # 2 finished / 3 weeks
    assert summary["volume_kg"] == 5150 and summary["sets"] == 10
    assert summary["streak"] == {"current_weeks": 0, "longest_weeks": 1}
    strength = {s["exercise_id"]: s for s in summary["strength"]}
    assert strength[BENCH]["first"] == {"date": "2024-01-01", "e1rm_kg": 116.67}
    assert strength[BENCH]["last"] == {"date": "2024-01-16", "e1rm_kg": 122.5}
    assert strength[BENCH]["change_kg"] == 5.83 and strength[BENCH]["change_pct"] == 5.0
    assert strength[SQUAT]["change_kg"] == 0 and strength[SQUAT]["first"]["e1rm_kg"] == 163.33  # 140 x 7/6
    assert strength[CURL]["last"]["e1rm_kg"] == 53.33  # 40 x (1 + 10/30)
    # A mid-week period widens to whole weeks.
    one_day: dict[str, Any] = {"from": "2024-01-03", "to": "2024-01-03"}
    narrow = await get_json(logbook_client, me, f"{PROGRESS}/summary", **one_day)
    assert (narrow["from"], narrow["to"], narrow["started"]) == ("2024-01-01", "2024-01-07", 2)

    # Re-dating W3 into week 2 moves its volume there.
    resp = await logbook_client.patch(
        f"{WORKOUTS}/{ids['w3']}", json={"started_at": "2024-01-09T07:00:00Z"}, headers=me.headers
    )
    assert resp.status == 200
    moved = await get_json(logbook_client, me, f"{PROGRESS}/summary", **PERIOD)
    assert [(w["started"], w["finished"], w["volume_kg"]) for w in moved["weeks"]] == [
        (2, 1, 4100),
        (1, 1, 1050),
        (1, 0, 0),
    ]
    assert moved["streak"]["longest_weeks"] == 2


async def test_current_streak(logbook_client: Client) -> None:
    me = await signed_in(logbook_client)
    now = datetime.now(UTC)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    # Finished workouts one, two and four weeks back (none yet this week): a streak of 2.
    for weeks_back in (1, 2, 4):
        workout = await start(
            logbook_client, me, started_at=(monday - timedelta(weeks=weeks_back)).isoformat()
        )
        await finish(logbook_client, me, workout["id"])
    summary = await get_json(logbook_client, me, f"{PROGRESS}/summary")
    assert summary["streak"]["current_weeks"] == 2
    assert len(summary["weeks"]) == 12 and summary["finished"] == 3
    # A finished workout this week extends it; one in progress does not.
    await start(logbook_client, me, started_at=monday.isoformat())
    assert (await get_json(logbook_client, me, f"{PROGRESS}/summary"))["streak"]["current_weeks"] == 2
    workout = await start(logbook_client, me, started_at=monday.isoformat())
    await finish(logbook_client, me, workout["id"])
    summary = await get_json(logbook_client, me, f"{PROGRESS}/summary")
    assert summary["streak"] == {"current_weeks": 3, "longest_weeks": 3}


async def test_progress_validation_and_privacy(logbook_client: Client) -> None:
    me, other = await signed_in(logbook_client), await signed_in(logbook_client)
    await seed_january(logbook_client, me)
    assert (await get_json(logbook_client, other, f"{PROGRESS}/exercises/{BENCH}", **PERIOD))[
        "sessions"
    ] == []
    assert (await get_json(logbook_client, other, f"{PROGRESS}/volume", **PERIOD))["volume_kg"] == 0
    await get_json(logbook_client, me, f"{PROGRESS}/exercises/No_Such_Thing", expect=404)
    bad: list[tuple[str, dict[str, Any]]] = [
        ("volume", {"from": "2024-02-01", "to": "2024-01-01"}),
        ("volume", {"group": "planet"}),
        ("volume", {"from": "2010-01-01", "to": "2024-01-01"}),
        ("summary", {"units": "stone"}),
        ("records", {"bogus": "1"}),
        (f"exercises/{BENCH}", {"limit": 0}),
    ]
    for path, params in bad:
        await get_json(logbook_client, me, f"{PROGRESS}/{path}", expect=422, **params)
    assert (await logbook_client.get(f"{PROGRESS}/summary")).status == 401
