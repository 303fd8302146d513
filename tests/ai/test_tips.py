"""Coaching tips: which lift a tip is about, its words, and delivery through notifications."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from fittracker_plugins.ai.state import AI, Ai
from fittracker_plugins.ai.tips import compose, pick

from fittracker import Event
from fittracker.runtime import RUNTIME
from tests.ai.test_api import CONFIG
from tests.conftest import MakeClient
from tests.workouts.conftest import SignedIn, signed_in
from tests.workouts.workout_helpers import BENCH, SQUAT, Client, finish, log, start

PLUGINS = ["users", "workouts", "ai", "notifications"]


def work(exercise_id: str, reps: int, weight: float) -> dict[str, Any]:
    at = "2026-03-02T10:00:00+00:00"
    return {
        "exercise_id": exercise_id,
        "reps": reps,
        "weight_kg": weight,
        "set_type": "normal",
        "logged_at": at,
    }


def test_a_record_is_the_tips_subject() -> None:
    by_exercise = {BENCH: [work(BENCH, 5, 200)], SQUAT: [work(SQUAT, 5, 100)]}
    records = [
        {"exercise_id": BENCH, "record_type": "most_reps", "value": 5, "unit": "reps"},
        {"exercise_id": SQUAT, "record_type": "best_e1rm", "value": 116.67, "unit": "kg"},
    ]
    assert pick(records, by_exercise) == (SQUAT, records[1])  # e1RM outranks reps
    assert pick([], by_exercise) == (BENCH, None)  # else the most volume (1000 vs 500 kg)


def test_the_words_of_a_tip() -> None:
    plan = {"weight_kg": 102.5, "reps": 5, "sets": 3, "method": "double_progression", "reason": "r"}
    record = {"record_type": "best_e1rm", "value": 116.67, "unit": "kg"}
    assert compose("Squat", plan, record, "kg") == (
        "New record on Squat",
        "New best estimated 1RM on Squat: 116.67 kg. Next time try 102.5 kg x 5 (3 sets).",
    )
    _, body = compose("Squat", plan, record, "lb")
    assert body == "New best estimated 1RM on Squat: 257.5 lb. Next time try 225 lb x 5 (3 sets)."
    deload = {**plan, "method": "deload", "reason": "no e1RM improvement in 4 sessions"}
    assert compose("Squat", deload, None, "kg") == (
        "Time to deload Squat",
        "no e1RM improvement in 4 sessions. Next time: 3 sets of 102.5 kg x 5.",
    )


async def tips_in_inbox(client: Client, who: SignedIn, count: int) -> list[dict[str, Any]]:
    for _ in range(300):
        resp = await client.get("/api/v1/notifications", headers=who.headers, params={"limit": 50})
        assert resp.status == 200
        tips = [i for i in (await resp.json())["items"] if i["type"] == "coaching.tip"]
        if len(tips) >= count:
            return tips
        await asyncio.sleep(0.025)
    raise AssertionError("no coaching tip reached the inbox")


def ai_state(client: Client) -> Ai:
    subapps: list[web.Application] = client.app._subapps
    return next(app[AI] for app in subapps if AI in app)


async def test_a_finished_workout_brings_a_tip_once(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    workout = await start(client, who)
    for _ in range(3):
        await log(client, who, workout["id"], SQUAT, reps=5, weight_kg=100)
    await finish(client, who, workout["id"])

    (tip,) = await tips_in_inbox(client, who, 1)
    # First squats ever: every record is new; the tip names the e1RM (100 x (1 + 5/30)) and the
    # next target: 5 reps in the default 5-8 range -> same weight, one more rep.
    assert tip["title"] == "New record on Barbell Squat"
    assert tip["body"] == (
        "New best estimated 1RM on Barbell Squat: 116.67 kg. Next time try 100 kg x 6 (3 sets)."
    )
    assert tip["data"]["exercise_id"] == SQUAT and tip["data"]["method"] == "double_progression"

    # At least once: the same completion handled again publishes nothing new, and even a
    # second tip event for the workout would notify once (its tip_id is the workout id).
    state = ai_state(client)
    done = Event(
        type="workout.completed",
        source="fittracker/workouts",
        data={"user_id": who.user_id, "workout_id": workout["id"], "sets": []},
    )
    await state.coach.on_completed(done)
    again = await state.coach.tip(who.user_id, workout["id"], {"sets": [work(SQUAT, 5, 100)]})
    assert again is not None and again["tip_id"] == workout["id"]
    await client.app[RUNTIME].bus.publish("coach.tip", again, source="fittracker/ai")
    await asyncio.sleep(0.3)
    assert len(await tips_in_inbox(client, who, 1)) == 1
