"""The AI plug-in through the public API, in the single process AND in split mode.

In split mode the AI runs as its own worker process: it learns about workouts and profiles
only from events, and reads the exercise catalog through the router (``ctx.services``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.api.test_journeys import BENCH, SQUAT, signup
from tests.helpers import auth

AI = "/api/v1/ai"


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, tries: int = 300) -> Any:
    """Events travel asynchronously (across processes in split mode): poll ``probe``."""
    for _ in range(tries):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_coaching_journey(api: Any) -> None:
    who = await signup(api, "Coached Lifter")
    headers = auth(who["access_token"])
    resp = await api.patch(
        "/api/v1/profiles/me",
        headers=headers,
        json={"experience": "intermediate", "goals": ["strength"], "equipment": ["barbell", "dumbbells"]},
    )
    assert resp.status == 200, await resp.text()

    workout = await (await api.post("/api/v1/workouts", headers=headers, json={})).json()
    for _ in range(3):
        body = {"exercise_id": SQUAT, "reps": 5, "weight_kg": 120, "rpe": 8}
        resp = await api.post(f"/api/v1/workouts/{workout['id']}/sets", headers=headers, json=body)
        assert resp.status == 201
    assert (await api.post(f"/api/v1/workouts/{workout['id']}/finish", headers=headers)).status == 200

    async def squat_recovery() -> dict[str, Any] | None:
        report = await (await api.get(AI + "/recovery", headers=headers)).json()
        found = [m for m in report["muscles"] if m["muscle"] == "quadriceps"]
        return found[0] if found and found[0]["reason"].startswith("quadriceps: 3 sets") else None

    quads = await eventually(squat_recovery, "the squats reached the AI's read model")
    assert quads["recovery_pct"] == 76.0  # 3 sets at RPE 8: 2.4 units of 10

    async def strength_plan_seen() -> dict[str, Any] | None:
        resp = await api.get(AI + "/recommendations", headers=headers)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body if "strength goal" in body["reason"] else None

    today = await eventually(strength_plan_seen, "the profile reached the AI")
    chosen = [item["exercise_id"] for item in today["exercises"]]
    assert SQUAT not in chosen and len(chosen) == 5 and today["ranked_by"] == ["builtin"]
    for item in today["exercises"]:
        assert item["equipment"] in ("barbell", "dumbbell", "body only", None)
        assert item["reason"]

    resp = await api.get(f"{AI}/progression/{SQUAT}", headers=headers)
    progression = await resp.json()
    # Strength: 3-6 reps at RPE 8 -> every set at the target effort and below the range top:
    # same weight, one more rep.
    assert progression["target"]["weight_kg"] == 120 and progression["target"]["reps"] == 6

    resp = await api.get(f"{AI}/exercises/{BENCH}/alternatives", headers=headers)
    alternatives = await resp.json()
    assert resp.status == 200 and alternatives["items"][0]["same_pattern"]

    insights = await (await api.get(AI + "/insights", headers=headers)).json()
    assert {"consistency", "load_spike"} <= {item["kind"] for item in insights["insights"]}

    async def tip() -> list[dict[str, Any]]:
        page = await (await api.get("/api/v1/notifications", headers=headers)).json()
        return [item for item in page["items"] if item["type"] == "coaching.tip"]

    (coached,) = await eventually(tip, "a coaching tip reached the inbox")
    assert coached["title"] == "New record on Barbell Squat"
    assert "Next time try 120 kg x 6" in coached["body"]


async def test_ai_refuses_strangers_and_bad_input(api: Any) -> None:
    who = await signup(api)
    headers = auth(who["access_token"])
    assert (await api.get(AI + "/recommendations")).status == 401
    resp = await api.get(AI + "/recommendations", headers=headers, params={"count": "99"})
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    resp = await api.get(f"{AI}/progression/{BENCH}", headers=headers)
    assert resp.status == 404
