"""Helpers shared by the workout logging, records and progress tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.workouts.conftest import SignedIn

Client = TestClient[Any, Any]
BENCH = "Barbell_Bench_Press_-_Medium_Grip"  # chest; shoulders + triceps secondary
SQUAT = "Barbell_Squat"  # quadriceps; calves, glutes, hamstrings, lower back secondary
CURL = "Barbell_Curl"  # biceps; forearms secondary
WORKOUTS = "/api/v1/workouts"
PROGRESS = "/api/v1/progress"


async def start(client: Client, who: SignedIn, **body: Any) -> dict[str, Any]:
    resp = await client.post(WORKOUTS, json=body, headers=who.headers)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def log(
    client: Client, who: SignedIn, workout_id: str, exercise_id: str = BENCH, reps: int = 5, **extra: Any
) -> dict[str, Any]:
    if "weight_lb" not in extra:
        extra.setdefault("weight_kg", 100)
    body = {"exercise_id": exercise_id, "reps": reps, **extra}
    resp = await client.post(f"{WORKOUTS}/{workout_id}/sets", json=body, headers=who.headers)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def finish(client: Client, who: SignedIn, workout_id: str) -> dict[str, Any]:
    resp = await client.post(f"{WORKOUTS}/{workout_id}/finish", headers=who.headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def get_json(client: Client, who: SignedIn, path: str, *, expect: int = 200, **params: Any) -> Any:
    resp = await client.get(path, headers=who.headers, params=params)
    assert resp.status == expect, await resp.text()
    return await resp.json()
