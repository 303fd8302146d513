"""User journeys through the public API, in the single process AND in split mode.

The ``api`` fixture runs each test twice: against the in-process app and against a real
split deployment (router + supervisor + worker processes). Nothing here reaches behind the
API, so the same assertions must hold in both.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.helpers import DEFAULT_PASSWORD, auth

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
SQUAT = "Barbell_Squat"


async def signup(api: Any, name: str = "Journey User") -> dict[str, Any]:
    email = f"j-{uuid.uuid4().hex[:12]}@example.com"
    resp = await api.post(
        "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": name}
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_account_lifecycle(api: Any) -> None:
    reg = await signup(api, "Ada Lovelace")
    email = reg["user"]["email"]
    resp = await api.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert resp.status == 200
    login = await resp.json()
    me = await (await api.get("/api/v1/auth/me", headers=auth(login["access_token"]))).json()
    assert me["email"] == email and me["role"] == "user"

    resp = await api.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert resp.status == 200
    rotated = await resp.json()
    # the old refresh token is used up; presenting it again ends the session
    assert (
        await api.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    ).status == 401
    assert (
        await api.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    ).status == 401

    resp = await api.post("/api/v1/auth/logout", headers=auth(reg["access_token"]))
    assert resp.status == 204
    # refused by the plug-in that revoked it and, through the bus, by every other one
    assert (await api.get("/api/v1/auth/me", headers=auth(reg["access_token"]))).status == 401
    for _ in range(50):
        resp = await api.get("/api/v1/workouts", headers=auth(reg["access_token"]))
        if resp.status == 401:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 401


async def test_profile_and_follows(api: Any) -> None:
    ada, grace = await signup(api, "Ada Lovelace"), await signup(api, "Grace Hopper")
    token = ada["access_token"]
    resp = await api.patch(
        "/api/v1/profiles/me", headers=auth(token), json={"weight_kg": 61.5, "units": "lb"}
    )
    assert resp.status == 200 and (await resp.json())["units"] == "lb"
    resp = await api.patch("/api/v1/profiles/me", headers=auth(token), json={"weight_kg": 5})
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "weight_kg"

    grace_id = grace["user"]["id"]
    assert (await api.post(f"/api/v1/users/{grace_id}/follow", headers=auth(token))).status == 204
    assert (await api.post(f"/api/v1/users/{grace_id}/follow", headers=auth(token))).status == 204
    followers = await (await api.get(f"/api/v1/users/{grace_id}/followers", headers=auth(token))).json()
    assert [f["id"] for f in followers["items"]] == [ada["user"]["id"]]
    found = await (await api.get("/api/v1/users?q=grace%20hop", headers=auth(token))).json()
    assert grace_id in [u["id"] for u in found["items"]]


async def test_exercises_and_routines(api: Any) -> None:
    token = (await signup(api))["access_token"]
    page = await (await api.get("/api/v1/exercises?q=bench&muscle=chest&limit=5", headers=auth(token))).json()
    assert BENCH in [e["id"] for e in page["items"]] and page["total"] >= 5
    templates = await (await api.get("/api/v1/routines?template=true", headers=auth(token))).json()
    names = {t["name"] for t in templates["items"]}
    assert any("5x5" in n for n in names)
    template_id = templates["items"][0]["id"]
    resp = await api.post(f"/api/v1/routines/{template_id}/copy", headers=auth(token))
    assert resp.status == 201
    copy = await resp.json()
    assert copy["copied_from"] == template_id
    resp = await api.put(f"/api/v1/routines/{template_id}/rating", headers=auth(token), json={"stars": 4})
    assert resp.status == 200


async def test_log_a_workout_and_see_records(api: Any) -> None:
    reg = await signup(api)
    token = reg["access_token"]
    resp = await api.post("/api/v1/workouts", headers=auth(token), json={"name": "Push"})
    assert resp.status == 201
    workout = await resp.json()
    assert workout["status"] == "in_progress"
    wid = workout["id"]

    sets = [
        {"exercise_id": BENCH, "reps": 10, "weight_kg": 40, "set_type": "warmup"},
        {"exercise_id": BENCH, "reps": 5, "weight_kg": 100},
        {"exercise_id": BENCH, "reps": 3, "weight_lb": 225},
        {"exercise_id": SQUAT, "reps": 5, "weight_kg": 120, "rpe": 8},
    ]
    for body in sets:
        resp = await api.post(f"/api/v1/workouts/{wid}/sets", headers=auth(token), json=body)
        assert resp.status == 201, await resp.text()
    resp = await api.post(f"/api/v1/workouts/{wid}/finish", headers=auth(token))
    assert resp.status == 200
    summary = await resp.json()
    # 100x5 + 102.0583x3 + 120x5 (the warm-up does not count)
    assert abs(summary["volume_kg"] - (500 + 102.0583 * 3 + 600)) < 0.01
    again = await (await api.post(f"/api/v1/workouts/{wid}/finish", headers=auth(token))).json()
    assert again["volume_kg"] == summary["volume_kg"]

    records = await (
        await api.get(f"/api/v1/progress/records?exercise_id={BENCH}", headers=auth(token))
    ).json()
    by_type = {r["record_type"]: r for r in records["items"]}
    assert by_type["heaviest_weight"]["value"] == 102.0583
    assert abs(by_type["best_e1rm"]["value"] - 116.67) < 0.01  # 100 x (1 + 5/30) beats 102.06 x 1.1

    resp = await api.post(f"/api/v1/workouts/{wid}/sets", headers=auth(token), json=sets[1])
    assert resp.status == 409  # no sets on a finished workout
    full = await (await api.get(f"/api/v1/workouts/{wid}", headers=auth(token))).json()
    assert len(full["sets"]) == 4


async def test_other_users_data_is_invisible(api: Any) -> None:
    owner, other = (await signup(api))["access_token"], (await signup(api))["access_token"]
    wid = (await (await api.post("/api/v1/workouts", headers=auth(owner), json={})).json())["id"]
    assert (await api.get(f"/api/v1/workouts/{wid}", headers=auth(other))).status == 404
    body = {"exercise_id": BENCH, "reps": 5, "weight_kg": 60}
    assert (await api.post(f"/api/v1/workouts/{wid}/sets", headers=auth(other), json=body)).status == 404
    assert (await api.get("/api/v1/workouts")).status == 401


async def test_concurrent_sets_lose_nothing(api: Any) -> None:
    token = (await signup(api))["access_token"]
    wid = (await (await api.post("/api/v1/workouts", headers=auth(token), json={})).json())["id"]

    async def log(i: int) -> int:
        body = {"exercise_id": BENCH, "reps": 5, "weight_kg": 50 + i}
        return int((await api.post(f"/api/v1/workouts/{wid}/sets", headers=auth(token), json=body)).status)

    statuses = await asyncio.gather(*(log(i) for i in range(30)))
    assert statuses == [201] * 30
    full = await (await api.get(f"/api/v1/workouts/{wid}", headers=auth(token))).json()
    assert len(full["sets"]) == 30


async def test_bad_input_is_a_problem(api: Any) -> None:
    resp = await api.post(
        "/api/v1/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    resp = await api.post("/api/v1/auth/login", data=b"email=x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    resp = await api.get("/api/v1/nothing-here")
    assert resp.status == 404 and (await resp.json())["status"] == 404
