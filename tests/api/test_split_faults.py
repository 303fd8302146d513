"""Split mode under faults: a worker killed with SIGKILL while requests flow."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.deployments import SplitServer, start_split_server
from tests.helpers import DEFAULT_PASSWORD, auth

BENCH = "Barbell_Bench_Press_-_Medium_Grip"


@pytest.fixture
def own_split_server(tmp_path: Path) -> Iterator[SplitServer]:
    server = start_split_server(tmp_path)
    yield server
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=30)
    except Exception:
        server.proc.kill()


async def test_kill_a_worker_under_load(own_split_server: SplitServer) -> None:
    base = own_split_server.url
    async with aiohttp.ClientSession() as session:
        body = {"email": "crash@example.com", "password": DEFAULT_PASSWORD, "name": "Crash Test"}
        async with session.post(f"{base}/api/v1/auth/register", json=body) as resp:
            token = (await resp.json())["access_token"]
        async with session.post(f"{base}/api/v1/workouts", json={}, headers=auth(token)) as resp:
            wid = (await resp.json())["id"]

        victims = own_split_server.worker_pids("workouts")
        assert len(victims) == 2
        reads: list[int] = []
        writes: list[tuple[int, str | None]] = []
        stop_at = time.monotonic() + 3.0

        async def reader() -> None:
            while time.monotonic() < stop_at:
                async with session.get(f"{base}/api/v1/exercises/{BENCH}", headers=auth(token)) as resp:
                    reads.append(resp.status)

        async def writer(n: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                payload = {"exercise_id": BENCH, "reps": 5, "weight_kg": float(n * 100 + i % 100)}
                async with session.post(
                    f"{base}/api/v1/workouts/{wid}/sets", json=payload, headers=auth(token)
                ) as resp:
                    set_id = (await resp.json()).get("id") if resp.status == 201 else None
                    writes.append((resp.status, set_id))

        async def killer() -> None:
            await asyncio.sleep(0.7)
            os.kill(victims[0], signal.SIGKILL)

        await asyncio.gather(*(reader() for _ in range(4)), writer(1), writer(2), killer())

        # Reads keep succeeding (through the other worker, or retried); a write either
        # succeeded or failed with 502/503 — never acknowledged and then lost.
        assert reads and set(reads) == {200}, sorted(set(reads))
        assert {status for status, _ in writes} <= {201, 502, 503}
        acknowledged = {set_id for status, set_id in writes if status == 201}
        async with session.get(f"{base}/api/v1/workouts/{wid}", headers=auth(token)) as resp:
            stored = {s["id"] for s in (await resp.json())["sets"]}
        assert acknowledged <= stored

        # The supervisor brings the killed worker back within seconds.
        deadline = time.monotonic() + 15
        while True:
            async with session.get(f"{base}/health/services") as resp:
                workers: list[dict[str, Any]] = (await resp.json())["services"]["workouts"]["workers"]
            ready = [w for w in workers if w["state"] == "ready"]
            if len(ready) == 2 and any(w["restarts"] >= 1 for w in workers):
                break
            assert time.monotonic() < deadline, workers
            await asyncio.sleep(0.2)
        assert victims[0] not in {w["pid"] for w in ready}


async def test_main_process_sigkill_leaves_no_orphans(tmp_path: Path) -> None:
    server = start_split_server(tmp_path)
    workers = server.worker_pids("workouts") + server.worker_pids("users")
    assert len(workers) == 3
    server.proc.kill()
    server.proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers outlived the main process"
        await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
