"""Bulk and scheduled sends in both deployments: in split mode through the router to two
notification workers, with an admin made by ``fittracker users create-admin`` on the split
server's data dir; in the single process with a token the app signs."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fittracker.runtime import RUNTIME
from tests.api.test_journeys import signup
from tests.api.test_notifications_live import connect_when_ready, next_json
from tests.deployments import ROOT, LiveClient, SplitServer
from tests.helpers import DEFAULT_PASSWORD, auth

BULK = "/api/v1/notifications/bulk"
SCHEDULED = "/api/v1/notifications/scheduled"


async def admin_token(api: Any, request: pytest.FixtureRequest) -> str:
    if not isinstance(api, LiveClient):
        token: str = api.app[RUNTIME].auth.issue(f"admin-{uuid.uuid4().hex[:8]}", "admin", sid="s").token
        return token
    server: SplitServer = request.getfixturevalue("split_server")
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fittracker", "users", "create-admin", "--email", email,
        "--password", DEFAULT_PASSWORD, "--data-dir", str(server.data_dir),
        env={**env, "FITTRACKER_PLUGINS": "users", "FITTRACKER__USERS__ARGON2_TIME_COST": "1",
             "FITTRACKER__USERS__ARGON2_MEMORY_KIB": "1024"},
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    resp = await api.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["user"]["role"] == "admin"
    login_token: str = body["access_token"]
    return login_token


async def inbox(api: Any, token: str) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/notifications", headers=auth(token))
    assert resp.status == 200
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def test_bulk_to_a_list_of_users(api: Any, request: pytest.FixtureRequest) -> None:
    admin = auth(await admin_token(api, request))
    people = [await signup(api, f"Bulk {n}") for n in range(3)]
    ids = [p["user"]["id"] for p in people]
    body = {"audience": {"user_ids": ids}, "category": "system", "title": "Hello all", "body": "News"}
    user = await api.post(BULK, headers=auth(people[0]["access_token"]), json=body)
    assert user.status == 403
    resp = await api.post(BULK, headers=admin, json=body)
    assert resp.status == 202, await resp.text()
    job = await resp.json()
    for _ in range(300):
        job = await (await api.get(f"{BULK}/{job['id']}", headers=admin)).json()
        if job["state"] == "done":
            break
        await asyncio.sleep(0.05)
    assert (job["state"], job["total"], job["sent"], job["failed"]) == ("done", 3, 3, 0)
    for person in people:
        titles = [i["title"] for i in await inbox(api, person["access_token"]) if i["type"] == "bulk"]
        assert titles == ["Hello all"]
    listed = await (await api.get(f"{BULK}?limit=100", headers=admin)).json()
    assert job["id"] in [j["id"] for j in listed["items"]]


async def test_a_scheduled_send_arrives_on_a_live_websocket(api: Any, request: pytest.FixtureRequest) -> None:
    admin = auth(await admin_token(api, request))
    ada = await signup(api, "Scheduled Ada")
    ws = await connect_when_ready(api, "", ada["access_token"])
    try:
        assert (await next_json(ws))["type"] == "ready"
        send_at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
        body = {"user_id": ada["user"]["id"], "category": "coaching", "title": "Squat day",
                "body": "Today: squats", "send_at": send_at}  # fmt: skip
        resp = await api.post(SCHEDULED, headers=admin, json=body)
        assert resp.status == 201, await resp.text()
        item = await resp.json()
        while True:
            message = await next_json(ws, timeout=10)
            if message["type"] == "notification" and message["data"]["type"] == "scheduled":
                break
        lag = (datetime.now(UTC) - datetime.fromisoformat(send_at)).total_seconds()
        assert 0 <= lag < 1.0, lag
        assert message["data"]["title"] == "Squat day"
        assert message["data"]["data"]["scheduled_id"] == item["id"]
    finally:
        await ws.close()
    mine = (await (await api.get(SCHEDULED, headers=auth(ada["access_token"]))).json())["items"]
    assert [i["id"] for i in mine] == [item["id"]]
