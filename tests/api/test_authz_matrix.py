"""The authorization matrix, generated from the OpenAPI document each deployment serves, so a
new operation is covered as soon as it is documented:

- every operation that needs a bearer token answers 401 (problem+json) without one;
- every operation on an object of another user that the caller cannot see answers 404, the
  documented choice ("not found, or not yours"), and changes nothing; objects that are visible
  but not yours (public routines, built-in exercises, public profiles) answer as ``VISIBLE`` says;
- every operation whose security names the ``admin`` role answers 403 to a user, not to an admin;
- revoked and expired tokens are refused by every operation that reads a token, WebSocket
  included, and close a WebSocket already open (4001).

Runs in both deployments (``api``: single process, and split mode behind the router).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from fittracker.auth import require_admin
from tests.api.authz_helpers import (
    BENCH,
    PROBLEM,
    call,
    calls,
    fetch_operations,
    operations,
    refused_everywhere,
    routes,
    signed_token,
    signing_key,
)
from tests.api.test_journeys import signup
from tests.api.test_notifications_live import connect, next_json
from tests.conftest import MakeClient
from tests.helpers import auth
from tests.notifications.live_helpers import FAST_HASHING, closed_with
from tests.workouts.test_exercises import CUSTOM

WS = "/api/v1/notifications/ws"
TOKEN_GONE = 4001  # the stream's close code for an expired or revoked token
REVOCATION_SETTLE_S = 5.0  # revocations reach other processes through the event bus

# Operations on A's private objects that B may call without a 404, and why that is right.
OWNER_EXCEPTIONS: dict[tuple[str, str], tuple[int, str]] = {
    # routes_social: "Unfollowing always works". B follows nobody, so nothing changes; the 204
    # only tells that an account with this id exists, which the documented choice accepts.
    ("DELETE", "/api/v1/users/{user_id}/follow"): (204, "unfollowing always works"),
}

# What B gets on objects that are visible but not B's: A's public routine, a built-in exercise
# and a user with a public profile (C). Called in this order; every operation whose path takes
# only these ids must be listed, so a new one has to state its rule here.
VISIBLE: dict[tuple[str, str], tuple[int, str]] = {
    ("GET", "/api/v1/routines/{routine_id}"): (200, "public routines are for everyone signed in"),
    ("PATCH", "/api/v1/routines/{routine_id}"): (403, "only the owner changes it; seen, so not 404"),
    ("DELETE", "/api/v1/routines/{routine_id}"): (403, "only the owner deletes it; seen, so not 404"),
    ("POST", "/api/v1/routines/{routine_id}/copy"): (201, "copying is what publishing is for"),
    ("PUT", "/api/v1/routines/{routine_id}/rating"): (200, "others rate public routines (popular list)"),
    ("GET", "/api/v1/routines/{routine_id}/rating"): (200, "B's own rating, just given"),
    ("GET", "/api/v1/exercises/{exercise_id}"): (200, "the built-in catalog is for everyone"),
    ("PATCH", "/api/v1/exercises/{exercise_id}"): (403, "built-ins are read-only"),
    ("DELETE", "/api/v1/exercises/{exercise_id}"): (403, "built-ins are read-only"),
    ("GET", "/api/v1/progress/exercises/{exercise_id}"): (200, "B's own (empty) history of it"),
    ("GET", "/api/v1/ai/progression/{exercise_id}"): (404, "B's own sets of it: none logged"),
    ("GET", "/api/v1/ai/predictions/{exercise_id}"): (404, "B's own sets of it: none logged"),
    ("GET", "/api/v1/ai/exercises/{exercise_id}/alternatives"): (200, "from the built-in catalog"),
    ("GET", "/api/v1/profiles/{user_id}"): (200, "public profiles are public"),
    ("POST", "/api/v1/users/{user_id}/follow"): (204, "following another user is the point"),
    ("DELETE", "/api/v1/users/{user_id}/follow"): (204, "and so is unfollowing"),
    ("GET", "/api/v1/users/{user_id}/followers"): (200, "a public user's lists are public"),
    ("GET", "/api/v1/users/{user_id}/following"): (200, "a public user's lists are public"),
}


async def created(resp: Any, status: int = 201) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def eventually_ok(api: Any, path: str, token: str, what: str) -> dict[str, Any]:
    """GET ``path`` until it answers 200 with something (events reach read models later)."""
    for _ in range(300):
        resp = await api.get(path, headers=auth(token))
        body: dict[str, Any] = await resp.json()
        if resp.status == 200 and body.get("items", True):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never came ({path})")


async def private_objects(api: Any, token: str, user_id: str) -> dict[str, str]:
    """One object of each kind, owned by the caller and visible to nobody else, by path id."""
    h = auth(token)
    exercise = await created(await api.post("/api/v1/exercises", headers=h, json=CUSTOM))
    workout = await created(await api.post("/api/v1/workouts", headers=h, json={"name": "Mine"}))
    work_set = await created(
        await api.post(
            f"/api/v1/workouts/{workout['id']}/sets",
            headers=h,
            json={"exercise_id": exercise["id"], "reps": 5, "weight_kg": 40},
        )
    )
    day = {"name": "Push", "exercises": [{"exercise_id": BENCH, "sets": 3, "reps": 5}]}
    routine = await created(
        await api.post("/api/v1/routines", headers=h, json={"name": "Mine", "days": [day]})
    )
    assert routine["visibility"] == "private"
    plan = await created(
        await api.post("/api/v1/ai/plans", headers=h, json={"goal": "hypertrophy", "days_per_week": 3})
    )
    send_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = await created(
        await api.post(
            "/api/v1/notifications/scheduled",
            headers=h,
            json={"category": "coaching", "title": "Mine", "body": "Squats", "send_at": send_at},
        )
    )
    resp = await api.patch("/api/v1/profiles/me", headers=h, json={"public": False})
    assert resp.status == 200, await resp.text()
    # The first set of an exercise is a record: celebrated in the inbox. And the AI has read the
    # set once the owner's own progression answers (so a leak through the AI would show).
    inbox = await eventually_ok(api, "/api/v1/notifications", token, "the record's notification")
    await eventually_ok(api, f"/api/v1/ai/progression/{exercise['id']}", token, "the AI's read model")
    fcm = f"fcm_authz-{uuid.uuid4().hex}"  # after the notifications: no push reaches it
    device = await created(
        await api.post("/api/v1/notifications/devices", headers=h, json={"platform": "fcm", "token": fcm})
    )
    return {
        "user_id": user_id,
        "exercise_id": exercise["id"],
        "workout_id": workout["id"],
        "set_id": work_set["id"],
        "routine_id": routine["id"],
        "plan_id": plan["id"],
        "scheduled_id": scheduled["id"],
        "notification_id": inbox["items"][0]["id"],
        "device_id": device["id"],
    }


async def snapshot(api: Any, token: str, ids: dict[str, str]) -> dict[str, Any]:
    """What the owner sees of their objects."""
    paths = {
        "profile": "/api/v1/profiles/me",
        "exercise": f"/api/v1/exercises/{ids['exercise_id']}",
        "workout": f"/api/v1/workouts/{ids['workout_id']}",
        "routine": f"/api/v1/routines/{ids['routine_id']}",
        "plan": f"/api/v1/ai/plans/{ids['plan_id']}",
        "scheduled": "/api/v1/notifications/scheduled",
        "inbox": "/api/v1/notifications?limit=100",
        "devices": "/api/v1/notifications/devices",
    }
    seen: dict[str, Any] = {}
    for name, path in paths.items():
        resp = await api.get(path, headers=auth(token))
        assert resp.status == 200, (path, await resp.text())
        seen[name] = await resp.json()
    # Only the notification of the matrix: more records may still be arriving.
    seen["inbox"] = [n for n in seen["inbox"]["items"] if n["id"] == ids["notification_id"]]
    seen["devices"] = [
        {k: d[k] for k in ("id", "platform", "token", "name")} for d in seen["devices"]["items"]
    ]
    return seen


async def test_every_protected_operation_needs_a_token(api: Any) -> None:
    ops = await fetch_operations(api)
    protected = [op for op in ops if op.access in ("user", "admin")]
    assert len(protected) > 50, [str(op) for op in ops]
    assert not await refused_everywhere(api, protected, None)
    # And the stream's handshake, whose token may also come in the query.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(api, "", "")
    assert refused.value.status == 401


async def test_other_users_objects_are_not_found(api: Any) -> None:
    # Admin operations (bulk jobs) act on nobody's objects and refuse users with 403 before
    # looking anything up: test_admin_operations_are_for_admins covers them.
    ops = [op for op in await fetch_operations(api) if op.path_params and op.access != "admin"]
    a, b, c = await signup(api, "Owner A"), await signup(api, "Other B"), await signup(api, "Public C")
    a_token, b_token = a["access_token"], b["access_token"]
    mine = await private_objects(api, a_token, a["user"]["id"])
    unknown = sorted({f"{name} ({op})" for op in ops for name in op.path_params if name not in mine})
    assert not unknown, f"path ids with no object in private_objects(): add one for {unknown}"
    before = await snapshot(api, a_token, mine)
    assert len(before["inbox"]) == 1 and len(before["devices"]) == 1

    wrong = []
    for op in ops:
        expected, why = OWNER_EXCEPTIONS.get(op.key, (404, "not found, or not yours"))
        answer = await call(api, op, mine, b_token, op.body())
        if answer.status != expected or (expected == 404 and answer.content_type != PROBLEM):
            wrong.append(f"{answer} (expected {expected}: {why})")
    # Several ids in one path: the caller's own parent does not reach another user's child.
    b_workout = await created(await api.post("/api/v1/workouts", headers=auth(b_token), json={}))
    for op in (op for op in ops if op.path_params == ("workout_id", "set_id")):
        answer = await call(api, op, {**mine, "workout_id": b_workout["id"]}, b_token, op.body())
        if answer.status != 404:
            wrong.append(f"{answer} (B's workout, A's set; expected 404)")
    assert not wrong, "\n".join(wrong)
    assert await snapshot(api, a_token, mine) == before

    # Visible but not B's: a public routine of A's, a built-in exercise, C's public profile.
    day = {"name": "Push", "exercises": [{"exercise_id": BENCH, "sets": 3, "reps": 5}]}
    public = await created(
        await api.post(
            "/api/v1/routines",
            headers=auth(a_token),
            json={"name": "Shared", "visibility": "public", "days": [day]},
        )
    )
    seen = {"routine_id": public["id"], "exercise_id": BENCH, "user_id": c["user"]["id"]}
    by_key = {op.key: op for op in ops if set(op.path_params) <= set(seen)}
    assert set(by_key) == set(VISIBLE), f"state the rule for {sorted(set(by_key) ^ set(VISIBLE))} in VISIBLE"
    for key, (expected, why) in VISIBLE.items():
        op = by_key[key]
        answer = await call(api, op, seen, b_token, op.body())
        if answer.status != expected:
            wrong.append(f"{answer} (expected {expected}: {why})")
    assert not wrong, "\n".join(wrong)
    resp = await api.get(f"/api/v1/routines/{public['id']}", headers=auth(a_token))
    after = await resp.json()
    assert (after["name"], after["visibility"], after["days"]) == ("Shared", "public", public["days"])


async def test_admin_operations_are_for_admins(api: Any, request: pytest.FixtureRequest) -> None:
    ops = [op for op in await fetch_operations(api) if op.access == "admin"]
    assert ops, "no operation names the admin role"
    user = (await signup(api, "Not An Admin"))["access_token"]
    # Signed with the deployment's key: the role claim is all require_admin reads (making an
    # admin with `fittracker users create-admin` is test_notifications_admin's, and slower).
    key, issuer = signing_key(api, request)
    admin = signed_token(key, issuer, (await signup(api, "The Admin"))["user"]["id"], role="admin")
    bulk = next(op for op in ops if op.operation_id == "notifications_bulk_create")
    job = await created(await api.post(bulk.path, headers=auth(admin), json=bulk.body()), 202)
    ids = {"job_id": job["id"]}
    unknown = sorted({f"{name} ({op})" for op in ops for name in op.path_params if name not in ids})
    assert not unknown, f"path ids of admin operations with no object: add one for {unknown}"
    wrong = []
    for op in ops:
        answer = await call(api, op, ids, user, op.body())
        if answer.status != 403 or answer.content_type != PROBLEM:
            wrong.append(f"as a user: {answer} (expected 403)")
        answer = await call(api, op, ids, admin, op.body())
        if answer.status in (401, 403) or answer.status >= 500:
            wrong.append(f"as an admin: {answer}")
    assert not wrong, "\n".join(wrong)


async def test_revoked_tokens_are_refused_everywhere(api: Any) -> None:
    ops = [op for op in await fetch_operations(api) if op.access != "public"]
    token = (await signup(api, "Soon Signed Out"))["access_token"]
    ws = await connect(api, "", token)
    try:
        assert (await next_json(ws))["type"] == "ready"
        assert (await api.post("/api/v1/auth/logout", headers=auth(token))).status == 204
        assert await closed_with(ws) == TOKEN_GONE
    finally:
        await ws.close()
    assert not await refused_everywhere(api, ops, token, settle_s=REVOCATION_SETTLE_S)
    await assert_stream_refuses(api, token)


async def test_expired_tokens_are_refused_everywhere(api: Any, request: pytest.FixtureRequest) -> None:
    ops = [op for op in await fetch_operations(api) if op.access != "public"]
    user_id = (await signup(api, "Out Of Time"))["user"]["id"]
    key, issuer = signing_key(api, request)
    expired = signed_token(key, issuer, user_id, seconds=-60)
    assert not await refused_everywhere(api, ops, expired)
    await assert_stream_refuses(api, expired)
    # Open while valid: closed once it expires (the stream re-checks tokens every 0.2 s here).
    ws = await connect(api, "", signed_token(key, issuer, user_id, seconds=3))
    try:
        assert (await next_json(ws))["type"] == "ready"
        assert await closed_with(ws, timeout=6) == TOKEN_GONE
    finally:
        await ws.close()


async def assert_stream_refuses(api: Any, token: str) -> None:
    for query, header in ((f"access_token={token}", ""), ("", token)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(api, query, header)
        assert refused.value.status == 401


async def test_every_admin_only_handler_is_marked_in_the_spec(make_client: MakeClient) -> None:
    """A handler that calls ``require_admin`` (itself or through its package's helpers) must be
    documented with the admin role, and only those: the matrix then proves they answer 403."""
    client = await make_client(
        plugins=["users", "workouts", "notifications", "ai"], config={"users": dict(FAST_HASHING)}
    )
    spec = await (await client.get("/api/v1/openapi.json")).json()
    marked = {op.key for op in operations(spec) if op.access == "admin"}
    needs_admin = {(m, path) for m, path, handler in routes(client.app) if calls(handler, require_admin)}
    assert needs_admin, "no handler calls require_admin: is the scan still looking at the handlers?"
    assert needs_admin == marked, (
        f"call require_admin but are not marked ADMIN: {sorted(needs_admin - marked)}; "
        f"marked ADMIN but never call it: {sorted(marked - needs_admin)}"
    )
