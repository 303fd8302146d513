"""Bulk sends (admin): audiences, progress to done, cancel, resume after a restart, access."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from fittracker.runtime import RUNTIME
from fittracker.storage import Collection
from tests.conftest import MakeClient
from tests.helpers import auth
from tests.notifications.live_helpers import INBOX, LIVE_PLUGINS, live_config, member, state_of

BULK = "/api/v1/notifications/bulk"
MESSAGE = {"category": "system", "title": "Maintenance", "body": "Back in 10 minutes"}


def admin_headers(client: TestClient[Any, Any]) -> dict[str, str]:
    """A token with the admin role (single process: signed by this app's auth keys)."""
    issued = client.app[RUNTIME].auth.issue(f"admin-{uuid.uuid4().hex[:8]}", "admin", sid="s")
    return auth(issued.token)


async def seed_directory(client: TestClient[Any, Any], count: int) -> list[str]:
    """``count`` users straight into the read model (fast; no accounts are needed to notify)."""
    ids = [f"u{n:05d}-{uuid.uuid4().hex[:6]}" for n in range(count)]
    users = state_of(client).directory.users
    await users.insert_many(
        [{"_id": i, "email": f"{i}@example.com", "name": i, "timezone": None} for i in ids]
    )
    return ids


async def bulk_items(client: TestClient[Any, Any], job_id: str) -> Counter[str]:
    """How many notifications of the job each user holds in their stream."""
    docs = await state_of(client).stream.entries.find({"type": "bulk", "data.bulk_id": job_id})
    return Counter(str(doc["user_id"]) for doc in docs)


async def until(
    client: TestClient[Any, Any], job_id: str, headers: dict[str, str], done: Any, within: float = 15.0
) -> dict[str, Any]:
    """Poll the job until ``done(job)`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        resp = await client.get(f"{BULK}/{job_id}", headers=headers)
        assert resp.status == 200, await resp.text()
        job: dict[str, Any] = await resp.json()
        if done(job):
            return job
        assert loop.time() < deadline, job
        await asyncio.sleep(0.05)


def jobs_of(client: TestClient[Any, Any]) -> Collection:
    return state_of(client).ctx.db.collection("bulk_jobs")


def finished(job: dict[str, Any]) -> bool:
    return job["state"] in ("done", "cancelled", "failed")


async def test_bulk_to_all_users_runs_to_done(make_client: MakeClient) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(bulk_batch_size=50))
    admin = admin_headers(client)
    ids = await seed_directory(client, 300)
    resp = await client.post(BULK, headers=admin, json={"audience": {"all": True}, **MESSAGE})
    assert resp.status == 202
    created = await resp.json()
    assert created["state"] == "queued" and created["total"] is None and created["sent"] == 0
    assert resp.headers["Location"] == f"{BULK}/{created['id']}"
    job = await until(client, created["id"], admin, finished)
    assert (job["state"], job["total"], job["sent"], job["failed"], job["skipped"]) == (
        "done",
        300,
        300,
        0,
        0,
    )
    assert job["audience"] == {"kind": "all"}
    assert await bulk_items(client, created["id"]) == Counter({i: 1 for i in ids})
    listed = await (await client.get(f"{BULK}?limit=5", headers=admin)).json()
    assert listed["items"][0]["id"] == created["id"]


async def test_bulk_to_followers_and_to_ids(live_client: TestClient[Any, Any]) -> None:
    admin = admin_headers(live_client)
    follows = state_of(live_client).follows.edges
    fans = [f"fan{n}" for n in range(5)]
    edges = [
        {"_id": f"{f}:star", "follower_id": f, "followee_id": "star", "active": True, "time": "t"}
        for f in fans
    ]
    edges.append(
        {"_id": "gone:star", "follower_id": "gone", "followee_id": "star", "active": False, "time": "t"}
    )
    await follows.insert_many(edges)
    resp = await live_client.post(BULK, headers=admin, json={"audience": {"followers_of": "star"}, **MESSAGE})
    job = await until(live_client, (await resp.json())["id"], admin, finished)
    assert (job["state"], job["total"], job["sent"]) == ("done", 5, 5)
    assert set(await bulk_items(live_client, job["id"])) == set(fans)

    # a list of ids, duplicates counted once; one user turned the category off: skipped
    ada, bob = await member(live_client, "Ada"), await member(live_client, "Bob")
    off = {"categories": {"system": {"in_app": False, "push": False, "email": False}}}
    assert (
        await live_client.put("/api/v1/notifications/preferences", headers=bob.headers, json=off)
    ).status == 200
    body = {"audience": {"user_ids": [ada.user_id, bob.user_id, ada.user_id]}, **MESSAGE, "data": {"x": 1}}
    created = await (await live_client.post(BULK, headers=admin, json=body)).json()
    job = await until(live_client, created["id"], admin, finished)
    assert (job["total"], job["sent"], job["skipped"], job["audience"]["count"]) == (2, 1, 1, 2)
    (item,) = (await (await live_client.get(INBOX, headers=ada.headers)).json())["items"]
    assert item["type"] == "bulk" and item["data"] == {"x": 1, "bulk_id": job["id"]}


async def test_the_same_idempotency_key_returns_the_first_job(live_client: TestClient[Any, Any]) -> None:
    admin = admin_headers(live_client)
    body = {"audience": {"user_ids": ["someone"]}, **MESSAGE, "idempotency_key": "launch-1"}
    first = await (await live_client.post(BULK, headers=admin, json=body)).json()
    again = await live_client.post(BULK, headers=admin, json=body)
    assert again.status == 202 and (await again.json())["id"] == first["id"]


async def test_cancel_stops_a_running_job(make_client: MakeClient) -> None:
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(bulk_batch_size=20, bulk_pause_s=0.1))
    admin = admin_headers(client)
    await seed_directory(client, 300)
    created = await (
        await client.post(BULK, headers=admin, json={"audience": {"all": True}, **MESSAGE})
    ).json()
    await until(client, created["id"], admin, lambda job: job["sent"] >= 20)
    resp = await client.post(f"{BULK}/{created['id']}/cancel", headers=admin)
    cancelled = await resp.json()
    assert resp.status == 200 and cancelled["state"] == "cancelled"
    # A batch in flight when cancelled still records its sends (however slow the machine):
    # wait until every notification delivered is counted and the count stops moving.
    for _ in range(40):
        job = await (await client.get(f"{BULK}/{created['id']}", headers=admin)).json()
        await asyncio.sleep(0.4)
        later = await (await client.get(f"{BULK}/{created['id']}", headers=admin)).json()
        delivered = sum((await bulk_items(client, created["id"])).values())
        if later["sent"] == job["sent"] == delivered:
            break
    assert job["state"] == later["state"] == "cancelled" and later["sent"] == job["sent"]
    assert 20 <= later["sent"] <= cancelled["sent"] + 20 < 300  # at most the batch in flight
    assert sum((await bulk_items(client, created["id"])).values()) == later["sent"]
    assert (await client.post(f"{BULK}/{created['id']}/cancel", headers=admin)).status == 200  # again: fine
    done = await (
        await client.post(BULK, headers=admin, json={"audience": {"user_ids": ["x"]}, **MESSAGE})
    ).json()
    await until(client, done["id"], admin, finished)
    assert (await client.post(f"{BULK}/{done['id']}/cancel", headers=admin)).status == 409
    assert (await client.post(f"{BULK}/nope/cancel", headers=admin)).status == 404


async def test_a_job_resumes_after_a_restart_and_notifies_nobody_twice(
    make_client: MakeClient, tmp_path: Path
) -> None:
    config = live_config(bulk_batch_size=20, bulk_pause_s=0.1)
    first = await make_client(plugins=LIVE_PLUGINS, config=config, data_dir=tmp_path / "shared")
    admin = admin_headers(first)
    ids = await seed_directory(first, 300)
    created = await (
        await first.post(BULK, headers=admin, json={"audience": {"all": True}, **MESSAGE})
    ).json()
    await until(first, created["id"], admin, lambda job: job["sent"] >= 40)
    await first.close()  # stops between two batches and frees the job's lease

    second = await make_client(plugins=LIVE_PLUGINS, config=config, data_dir=tmp_path / "shared")
    paused = await jobs_of(second).find_one({"_id": created["id"]})
    assert paused is not None and paused["state"] == "running" and 40 <= paused["sent"] < 300
    job = await until(second, created["id"], admin_headers(second), finished)
    assert (job["state"], job["sent"], job["total"]) == ("done", 300, 300)
    assert await bulk_items(second, created["id"]) == Counter({i: 1 for i in ids})


async def test_a_crash_between_sends_and_progress_sends_nothing_twice(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Progress lost (as if the process died after sending, before saving): the batch is sent
    again with the same idempotency keys, and nobody gets a second notification."""
    client = await make_client(plugins=LIVE_PLUGINS, config=live_config(bulk_batch_size=25))
    admin = admin_headers(client)
    ids = await seed_directory(client, 60)
    created = await (
        await client.post(BULK, headers=admin, json={"audience": {"all": True}, **MESSAGE})
    ).json()
    await until(client, created["id"], admin, finished)
    rewound = {"state": "running", "cursor": "", "sent": 0, "lease_until": "", "finished_at": None}
    await jobs_of(client).update_one({"_id": created["id"]}, {"$set": rewound})
    job = await until(client, created["id"], admin, finished)
    assert (job["state"], job["sent"]) == ("done", 60)
    assert await bulk_items(client, created["id"]) == Counter({i: 1 for i in ids})


async def test_admins_only_and_validation(live_client: TestClient[Any, Any]) -> None:
    ada = await member(live_client, "Ada")
    body = {"audience": {"all": True}, **MESSAGE}
    assert (await live_client.post(BULK, json=body)).status == 401
    for method, path in (("POST", BULK), ("GET", BULK), ("GET", f"{BULK}/x"), ("POST", f"{BULK}/x/cancel")):
        resp = await live_client.request(method, path, headers=ada.headers, json=body)
        assert resp.status == 403, (method, path)
    admin = admin_headers(live_client)
    cases = [
        ({**body, "audience": {}}, "audience"),
        ({**body, "audience": {"all": True, "user_ids": ["a"]}}, "audience"),
        ({**body, "audience": {"all": False}}, "audience.all"),
        ({**body, "audience": {"user_ids": []}}, "audience.user_ids"),
        ({**body, "category": "progress"}, "category"),
        ({**body, "title": ""}, "title"),
        ({"audience": {"all": True}, "category": "system", "title": "t"}, "body"),
        ({**body, "extra": 1}, "extra"),
        # data the storage could not hold (was a 500 when the job was stored)
        ({**body, "data": {"$where": "1"}}, "data"),
        ({**body, "data": {"a": {"b.c": 1}}}, "data"),
        ({**body, "data": {"n": 2**63}}, "data"),
    ]
    for payload, field in cases:
        resp = await live_client.post(BULK, headers=admin, json=payload)
        assert resp.status == 422, payload
        problem = await resp.json()
        assert any(e["field"] == field for e in problem["errors"]), (field, problem["errors"])
    assert (await live_client.get(f"{BULK}/unknown", headers=admin)).status == 404
