"""``Idempotency-Key`` on starting workouts and logging sets, in both deployments.

A client that got no answer (or a 503 after its request was sent) sends the same request again
with the same key: it gets the first answer, marked ``Idempotent-Replayed: true``, and nothing
is stored twice, even when the copies race each other through different workers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import auth, register

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
SQUAT = "Barbell_Squat"
A_SET = {"exercise_id": BENCH, "reps": 5, "weight_kg": 100.0, "rpe": 8}


def keyed(token: str, key: str) -> dict[str, str]:
    return {**auth(token), "Idempotency-Key": key}


async def new_workout(api: Any, token: str) -> str:
    resp = await api.post("/api/v1/workouts", json={"name": "Push"}, headers=auth(token))
    assert resp.status == 201
    workout_id: str = (await resp.json())["id"]
    return workout_id


async def stored_sets(api: Any, token: str, workout_id: str) -> list[dict[str, Any]]:
    resp = await api.get(f"/api/v1/workouts/{workout_id}", headers=auth(token))
    assert resp.status == 200
    sets: list[dict[str, Any]] = (await resp.json())["sets"]
    return sets


async def test_a_set_sent_twice_with_one_key_is_logged_once(api: Any) -> None:
    token = (await register(api))["access_token"]
    workout = await new_workout(api, token)
    path = f"/api/v1/workouts/{workout}/sets"
    first = await api.post(path, json=A_SET, headers=keyed(token, "set-1"))
    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    again = await api.post(path, json=A_SET, headers=keyed(token, "set-1"))
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    body, replayed = await first.json(), await again.json()
    assert replayed == body  # the same set, and the same records it broke the first time
    assert {r["record_type"] for r in body["records"]} >= {"heaviest_weight"}
    assert [s["id"] for s in await stored_sets(api, token, workout)] == [body["id"]]

    # A new key is a new set; no key at all is always a new set.
    assert (await api.post(path, json=A_SET, headers=keyed(token, "set-2"))).status == 201
    assert (await api.post(path, json=A_SET, headers=auth(token))).status == 201
    assert len(await stored_sets(api, token, workout)) == 3


async def test_one_key_with_a_different_request_is_a_422(api: Any) -> None:
    token = (await register(api))["access_token"]
    workout = await new_workout(api, token)
    path = f"/api/v1/workouts/{workout}/sets"
    assert (await api.post(path, json=A_SET, headers=keyed(token, "k"))).status == 201
    resp = await api.post(path, json={**A_SET, "reps": 6}, headers=keyed(token, "k"))
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    assert "reps" in (await resp.json())["detail"]
    assert [s["reps"] for s in await stored_sets(api, token, workout)] == [5]
    # The same weight in pounds is the same request: it is stored in kg.
    resp = await api.post(
        path, json={**{k: v for k, v in A_SET.items() if k != "weight_kg"}, "weight_lb": 220.462262185},
        headers=keyed(token, "k"),
    )  # fmt: skip
    assert resp.status in (201, 422)  # rounding decides; either way nothing new is stored
    assert len(await stored_sets(api, token, workout)) == 1


async def test_racing_copies_store_one_set(api: Any) -> None:
    """Eight copies at once (in split mode spread over both workouts workers): one set."""
    token = (await register(api))["access_token"]
    workout = await new_workout(api, token)
    path = f"/api/v1/workouts/{workout}/sets"
    answers = await asyncio.gather(
        *(api.post(path, json=A_SET, headers=keyed(token, "race")) for _ in range(8))
    )
    assert [r.status for r in answers] == [201] * 8
    ids = {(await r.json())["id"] for r in answers}
    assert len(ids) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 7
    assert [s["id"] for s in await stored_sets(api, token, workout)] == list(ids)


async def test_keys_belong_to_a_user_and_a_workout(api: Any) -> None:
    a, b = (await register(api))["access_token"], (await register(api))["access_token"]
    a1, a2, b1 = await new_workout(api, a), await new_workout(api, a), await new_workout(api, b)
    made = []
    for token, workout in ((a, a1), (a, a2), (b, b1)):
        resp = await api.post(f"/api/v1/workouts/{workout}/sets", json=A_SET, headers=keyed(token, "same"))
        assert resp.status == 201 and "Idempotent-Replayed" not in resp.headers
        made.append((await resp.json())["id"])
    assert len(set(made)) == 3
    # B's key names nothing of A's: B's request on A's workout is a 404, as without a key.
    resp = await api.post(f"/api/v1/workouts/{a1}/sets", json=A_SET, headers=keyed(b, "same"))
    assert resp.status == 404


async def test_a_retry_after_the_workout_finished_gets_the_first_answer(api: Any) -> None:
    token = (await register(api))["access_token"]
    workout = await new_workout(api, token)
    path = f"/api/v1/workouts/{workout}/sets"
    first = await (await api.post(path, json=A_SET, headers=keyed(token, "late"))).json()
    assert (await api.post(f"/api/v1/workouts/{workout}/finish", headers=auth(token))).status == 200
    again = await api.post(path, json=A_SET, headers=keyed(token, "late"))
    assert again.status == 201 and (await again.json())["id"] == first["id"]
    # Without the key, the finished workout refuses a new set.
    assert (await api.post(path, json=A_SET, headers=auth(token))).status == 409


async def test_starting_a_workout_twice_with_one_key(api: Any) -> None:
    token = (await register(api))["access_token"]
    body = {"name": "Legs", "started_at": "2026-11-20T07:30:00Z"}
    answers = await asyncio.gather(
        *(api.post("/api/v1/workouts", json=body, headers=keyed(token, "legs")) for _ in range(4))
    )
    assert [r.status for r in answers] == [201] * 4
    assert len({(await r.json())["id"] for r in answers}) == 1
    resp = await api.get("/api/v1/workouts", headers=auth(token))
    assert len((await resp.json())["items"]) == 1
    resp = await api.post("/api/v1/workouts", json={**body, "name": "Arms"}, headers=keyed(token, "legs"))
    assert resp.status == 422 and "name" in (await resp.json())["detail"]


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "caf\u00e9"])
async def test_a_malformed_key_is_a_400(api: Any, key: str) -> None:
    token = (await register(api))["access_token"]
    resp = await api.post("/api/v1/workouts", json={}, headers=keyed(token, key))
    assert resp.status == 400 and resp.content_type == "application/problem+json"
    assert "Idempotency-Key" in (await resp.json())["detail"]
    resp = await api.get("/api/v1/workouts", headers=auth(token))
    assert (await resp.json())["items"] == []
