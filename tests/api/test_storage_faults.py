"""A full or read-only database under the running application: 503, no crash, recovery.

SQLite is made to fail the way a full disk and a read-only file make it fail, on the live
connection of the workouts plug-in: ``max_page_count`` capped at the file's size gives
SQLITE_FULL ("database or disk is full"), and ``query_only`` gives SQLITE_READONLY. Both work
as root too, where chmod would not, and need no special file system.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from fittracker.runtime import RUNTIME
from fittracker.storage.sqlite import SqliteDatabase
from tests.conftest import MakeClient
from tests.helpers import auth, register

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
A_SET = {"exercise_id": BENCH, "reps": 5, "weight_kg": 60.0}
UNLIMITED_PAGES = 1_073_741_823  # SQLite's default max_page_count


async def workouts_db(client: TestClient[Any, Any]) -> SqliteDatabase:
    db = client.app[RUNTIME].contexts["workouts"].db
    assert isinstance(db, SqliteDatabase)
    return db


async def pragma(db: SqliteDatabase, statement: str) -> None:
    await db._run(lambda c: c.execute(statement).fetchall())


async def listed(client: TestClient[Any, Any], token: str) -> list[str]:
    resp = await client.get("/api/v1/workouts?limit=100", headers=auth(token))
    return [w["id"] for w in (await resp.json())["items"]]


def assert_unavailable(status: int, headers: Any, body: dict[str, Any], words: str) -> None:
    assert status == 503
    assert headers["Content-Type"].startswith("application/problem+json")
    assert headers["Retry-After"] == "10"
    assert body["type"].endswith("/storage-unavailable") and words in body["detail"]
    assert "fit.db" not in body["detail"] and "/" not in body["detail"]  # no paths


async def test_a_full_disk_is_a_503_and_writes_resume_when_space_returns(make_client: MakeClient) -> None:
    client = await make_client(plugins=["users", "workouts"])
    token = (await register(client))["access_token"]
    db = await workouts_db(client)
    await db._run(
        lambda c: c.execute(f"PRAGMA max_page_count = {c.execute('PRAGMA page_count').fetchone()[0]}")
    )
    created: list[str] = []
    for _ in range(200):  # the free space left in the last pages runs out within a few workouts
        resp = await client.post("/api/v1/workouts", json={"notes": "x" * 1000}, headers=auth(token))
        if resp.status != 201:
            break
        created.append((await resp.json())["id"])
    assert_unavailable(resp.status, resp.headers, await resp.json(), "disk is full")
    # Reads still work, and show exactly the acknowledged workouts.
    assert sorted(await listed(client, token)) == sorted(created)

    await db._run(lambda c: c.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}"))
    resp = await client.post("/api/v1/workouts", json={}, headers=auth(token))
    assert resp.status == 201
    workout = (await resp.json())["id"]
    resp = await client.post(
        f"/api/v1/workouts/{workout}/sets",
        json={"exercise_id": BENCH, "reps": 5, "weight_kg": 60.0},
        headers=auth(token),
    )
    assert resp.status == 201
    assert sorted(await listed(client, token)) == sorted([*created, workout])


async def test_a_read_only_database_is_a_503_and_recovers(make_client: MakeClient) -> None:
    client = await make_client(plugins=["users", "workouts"])
    token = (await register(client))["access_token"]
    workout = (await (await client.post("/api/v1/workouts", json={}, headers=auth(token))).json())["id"]
    db = await workouts_db(client)
    await pragma(db, "PRAGMA query_only = 1")
    sets = f"/api/v1/workouts/{workout}/sets"
    resp = await client.post(sets, json=A_SET, headers=auth(token))
    assert_unavailable(resp.status, resp.headers, await resp.json(), "read-only")
    resp = await client.get(f"/api/v1/workouts/{workout}", headers=auth(token))
    assert resp.status == 200 and (await resp.json())["sets"] == []  # nothing half-written

    await pragma(db, "PRAGMA query_only = 0")
    resp = await client.post(sets, json=A_SET, headers=auth(token))
    assert resp.status == 201
