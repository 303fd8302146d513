"""A full or read-only database under the running application: 503, no crash, recovery.

In the application's process, SQLite is made to fail the way a full disk and a read-only file
make it fail, on the live connection of the workouts plug-in: ``max_page_count`` capped at the
file's size gives SQLITE_FULL ("database or disk is full"), and ``query_only`` gives
SQLITE_READONLY. Both work as root too, where chmod would not.

Then a real full disk, in both deployments: the data directory on a small tmpfs, filled by a
ballast file while the server runs (mounting needs root, as CI runs; skipped otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fittracker.runtime import RUNTIME
from fittracker.storage.sqlite import SqliteDatabase
from tests.conftest import MakeClient
from tests.deployments import live_client, start_single_server, start_split_server
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


# --- a real full disk, in both deployments ---------------------------------------------------------


@contextlib.contextmanager
def small_file_system(where: Path, size_mb: int) -> Iterator[None]:
    """A tmpfs of ``size_mb`` mounted at ``where``: a disk that really fills up."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Write a ballast file until the file system has no byte left."""
    ballast = directory / "ballast"
    with open(ballast, "wb", buffering=0) as out:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    return ballast


@pytest.mark.parametrize("deployment", ["single", "split"])
async def test_a_real_full_disk_in_both_deployments(tmp_path: Path, deployment: str) -> None:
    """The data directory on a small tmpfs, filled to the last byte under the running server:
    set logging answers 503 problems, reads go on, nothing acknowledged is lost and nothing
    refused is stored; when space returns, writes resume and the derived data catches up.
    The server (and in split mode every worker) stays up throughout."""
    start = start_single_server if deployment == "single" else start_split_server
    data = tmp_path / "data"
    with small_file_system(data, size_mb=48):
        server = start(tmp_path, log_file=tmp_path / "server.log")
        try:
            workers = {p: server.worker_pids(p) for p in ("workouts", "ai")} if deployment == "split" else {}
            async with live_client(server) as client:
                token = (await register(client))["access_token"]
                workout = (
                    await (await client.post("/api/v1/workouts", json={}, headers=auth(token))).json()
                )["id"]
                sets = f"/api/v1/workouts/{workout}/sets"
                acknowledged = [
                    (await (await client.post(sets, json=A_SET, headers=auth(token))).json())["id"]
                ]

                ballast = fill(data)
                for reps in range(1, 500):
                    resp = await client.post(sets, json={**A_SET, "reps": reps}, headers=auth(token))
                    if resp.status != 201:
                        break
                    acknowledged.append((await resp.json())["id"])
                assert_unavailable(resp.status, resp.headers, await resp.json(), "disk is full")
                resp = await client.get(f"/api/v1/workouts/{workout}", headers=auth(token))
                assert resp.status == 200
                assert [s["id"] for s in (await resp.json())["sets"]] == acknowledged

                ballast.unlink()
                resp = await client.post(sets, json={**A_SET, "weight_kg": 100.0}, headers=auth(token))
                assert resp.status == 201, await resp.text()
                acknowledged.append((await resp.json())["id"])
                resp = await client.get(f"/api/v1/workouts/{workout}", headers=auth(token))
                assert [s["id"] for s in (await resp.json())["sets"]] == acknowledged
                resp = await client.get(f"/api/v1/progress/records?exercise_id={BENCH}", headers=auth(token))
                records = {r["record_type"]: r["value"] for r in (await resp.json())["items"]}
                assert records["heaviest_weight"] == 100.0
                # The notifications consumer, whose writes failed too, catches up: the celebration.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    resp = await client.get("/api/v1/notifications?limit=100", headers=auth(token))
                    values = [
                        n["data"].get("value")
                        for n in (await resp.json())["items"]
                        if n["type"] == "achievement.record"
                        and n["data"].get("record_type") == "heaviest_weight"
                    ]
                    if 100.0 in values:
                        break
                    await asyncio.sleep(0.2)
                else:
                    raise AssertionError(f"the record notification never came: {values}")
            assert server.proc.poll() is None
            for plugin, pids in workers.items():
                assert server.worker_pids(plugin) == pids, f"a {plugin} worker was replaced"
        finally:
            server.stop()
