"""kill -9 of the single process in the middle of a write load, then a restart on its data.

Every acknowledged write must be there after the restart, and nothing half-written: each
workout's set count matches its sets, a finished workout has its summary, the workout list
agrees with the workouts, and the derived data (weekly summary, records) matches the sets,
however the kill cut through a set's several writes.
"""

from __future__ import annotations

import asyncio
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.deployments import SplitServer, start_single_server
from tests.helpers import DEFAULT_PASSWORD, auth

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
SETS_PER_WORKOUT = 12


@dataclass
class Writer:
    token: str = ""
    workouts: list[str] = field(default_factory=list)
    acknowledged: dict[str, list[str]] = field(default_factory=dict)  # workout -> set ids
    finished: set[str] = field(default_factory=set)
    weights: dict[str, float] = field(default_factory=dict)  # set id -> weight


async def run_writer(session: aiohttp.ClientSession, base: str, writer: Writer, seed: int) -> None:
    """Log sets, finishing each workout after SETS_PER_WORKOUT and starting another, until cut off."""
    rng = random.Random(seed)
    headers = auth(writer.token)
    while True:
        async with session.post(f"{base}/api/v1/workouts", json={}, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            workout = (await resp.json())["id"]
        writer.workouts.append(workout)
        writer.acknowledged[workout] = []
        for _ in range(SETS_PER_WORKOUT):
            weight = float(rng.randrange(40, 140))
            body = {"exercise_id": BENCH, "reps": rng.randrange(1, 12), "weight_kg": weight}
            async with session.post(
                f"{base}/api/v1/workouts/{workout}/sets", json=body, headers=headers
            ) as resp:
                assert resp.status == 201, await resp.text()
                set_id = (await resp.json())["id"]
            writer.acknowledged[workout].append(set_id)
            writer.weights[set_id] = weight
        async with session.post(f"{base}/api/v1/workouts/{workout}/finish", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        writer.finished.add(workout)


async def load_until_killed(server: SplitServer, writers: list[Writer], kill_after: float) -> None:
    async with aiohttp.ClientSession() as session:
        for n, writer in enumerate(writers):
            body = {"email": f"crash-{n}@example.com", "password": DEFAULT_PASSWORD, "name": f"Crash {n}"}
            async with session.post(f"{server.url}/api/v1/auth/register", json=body) as resp:
                writer.token = (await resp.json())["access_token"]
        tasks = [asyncio.create_task(run_writer(session, server.url, w, n)) for n, w in enumerate(writers)]
        await asyncio.sleep(kill_after)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    # Each writer stopped on the kill (a broken connection), not on a failed request.
    assert all(isinstance(e, aiohttp.ClientError) for e in done), done


async def check_after_restart(base: str, writer: Writer) -> None:
    headers = auth(writer.token)
    async with aiohttp.ClientSession(headers=headers) as session:
        stored: dict[str, dict[str, Any]] = {}
        for workout in writer.workouts:
            async with session.get(f"{base}/api/v1/workouts/{workout}") as resp:
                if resp.status == 404:  # created but the kill came before its 201: never acknowledged
                    assert not writer.acknowledged[workout]
                    continue
                doc = await resp.json()
            ids = [s["id"] for s in doc["sets"]]
            assert set(writer.acknowledged[workout]) <= set(ids), "an acknowledged set is missing"
            assert len(ids) == len(set(ids)) == doc["set_count"]
            if workout in writer.finished:
                assert doc["status"] == "finished" and doc["summary"]["sets"] == len(ids)
            stored[workout] = doc
        async with session.get(f"{base}/api/v1/workouts?limit=100") as resp:
            listed = {w["id"]: w["status"] for w in (await resp.json())["items"]}
        assert {w: listed.get(w) for w in stored} == {w: d["status"] for w, d in stored.items()}
        for workout in listed.keys() - stored.keys():  # created, then the kill came before its 201
            async with session.get(f"{base}/api/v1/workouts/{workout}") as resp:
                unacknowledged = await resp.json()
            assert unacknowledged["status"] == "in_progress" and unacknowledged["sets"] == []
            stored[workout] = unacknowledged
        sets = [s for doc in stored.values() for s in doc["sets"]]
        async with session.get(f"{base}/api/v1/progress/summary") as resp:
            summary = await resp.json()
        assert summary["started"] == len(stored)
        assert summary["finished"] == sum(d["status"] == "finished" for d in stored.values())
        assert summary["sets"] == len(sets)
        assert abs(summary["volume_kg"] - sum(s["reps"] * s["weight_kg"] for s in sets)) < 1e-6
        async with session.get(f"{base}/api/v1/progress/records?exercise_id={BENCH}") as resp:
            records = {r["record_type"]: r["value"] for r in (await resp.json())["items"]}
        assert records["heaviest_weight"] == max(s["weight_kg"] for s in sets)


async def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    writers = [Writer() for _ in range(4)]
    server = start_single_server(tmp_path)
    try:
        await load_until_killed(server, writers, kill_after=random.Random(8).uniform(2.0, 3.0))
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert sum(len(ids) for w in writers for ids in w.acknowledged.values()) > 20  # the load got going

    again = start_single_server(tmp_path)
    try:
        for writer in writers:
            await check_after_restart(again.url, writer)
    finally:
        again.stop()
