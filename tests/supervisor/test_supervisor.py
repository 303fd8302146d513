"""The supervisor with real worker processes: ready, restarts, hangs, crash loops, drain, SIGHUP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fittracker.router.pool import Upstream, UpstreamPool
from tests.supervisor.conftest import SECRET, MakeSupervisor
from tests.worker.helpers import (
    NOTES_HEALTH,
    ROOT,
    pid_running,
    plugin_env,
    signed,
    unix_session,
    wait_gone,
)

SLOW = "/api/v1/notes/slow?seconds={}"


async def eventually(condition: Callable[[], Any], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within_s} s: {what}")


class MiniRouter:
    """Just enough of a router: round robin over ready upstreams, counting in-flight requests."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.turn = 0
        self.sessions: dict[str, aiohttp.ClientSession] = {}

    async def get(self, path: str) -> int:
        ready = self.pool.ready()
        assert ready, "no ready worker"
        upstream = ready[self.turn % len(ready)]
        self.turn += 1
        upstream.in_flight += 1  # in the same step as the pick, as the real balancer does
        try:
            session = self.sessions.get(upstream.id)
            if session is None:
                session = self.sessions[upstream.id] = unix_session(upstream.socket_path)
            async with session.get(f"http://worker{path}", headers=signed(SECRET, "GET", path)) as resp:
                await resp.read()
                return resp.status
        finally:
            upstream.in_flight -= 1

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()


async def signed_get(upstream: Upstream, path: str) -> tuple[int, Any]:
    async with (
        unix_session(upstream.socket_path) as session,
        session.get(f"http://worker{path}", headers=signed(SECRET, "GET", path)) as resp,
    ):
        return resp.status, await resp.json()


async def test_starts_workers_and_routes_only_to_ready_ones(make_supervisor: MakeSupervisor) -> None:
    h = await make_supervisor(workers={"notes": 2})
    pool = h.pools["notes"]
    assert all(u.state in {"starting", "ready"} for u in pool.all())
    assert await h.supervisor.wait_ready(30)
    ready = pool.ready()
    assert len(ready) == 2
    assert len({u.pid for u in ready}) == 2
    assert all(u.pid is not None and pid_running(u.pid) for u in ready)
    assert all(u.is_unix for u in ready)

    status, body = await signed_get(ready[0], NOTES_HEALTH)
    assert (status, body["plugin"]) == (200, "notes")
    async with unix_session(ready[0].socket_path) as session, session.get(f"http://w{NOTES_HEALTH}") as resp:
        assert resp.status == 401  # the supervisor's secret reached the worker

    report = h.supervisor.describe()["notes"]
    assert report["status"] == "ok"
    assert report["mode"] == "process"
    assert sorted(w["worker_id"] for w in report["workers"]) == ["notes-1", "notes-2"]
    for w in report["workers"]:
        assert {"pid", "state", "restarts", "uptime_s", "in_flight", "last_error"} <= set(w)
        assert (w["state"], w["restarts"]) == ("ready", 0)

    # Worker logs come through as JSON lines tagged with the worker and its plug-in.
    records = await eventually(
        lambda: [r for r in h.log_records() if r.get("message") == "worker ready"], 5, "worker logs"
    )
    assert {r["worker_id"] for r in records} == {"notes-1", "notes-2"}
    assert {r["plugin"] for r in records} == {"notes"}


def sockets_in(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


async def test_a_killed_worker_is_restarted(make_supervisor: MakeSupervisor, socket_dir: Path) -> None:
    h = await make_supervisor(workers={"notes": 1})
    assert await h.supervisor.wait_ready(30)
    pool = h.pools["notes"]
    old = pool.ready()[0]
    assert old.pid is not None
    os.kill(old.pid, signal.SIGKILL)
    new = await eventually(
        lambda: next((u for u in pool.ready() if u.pid != old.pid), None), 20, "a restarted worker"
    )
    assert new.restarts == 1
    assert new.last_error == "killed by SIGKILL"
    assert pool.all() == [new]  # the dead incarnation left the pool
    assert (await signed_get(new, NOTES_HEALTH))[0] == 200
    assert sockets_in(socket_dir) == {"notes-1-2.sock"}  # the dead one's socket was removed


async def test_a_hung_worker_is_detected_and_replaced(
    make_supervisor: MakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    h = await make_supervisor(workers={"notes": 1})
    assert await h.supervisor.wait_ready(30)
    pool = h.pools["notes"]
    hung = pool.ready()[0]
    assert hung.pid is not None
    os.kill(hung.pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        new = await eventually(
            lambda: next((u for u in pool.ready() if u.pid != hung.pid), None), 20, "a replacement"
        )
        assert await wait_gone(hung.pid, 5), "the hung worker was not killed"
    finally:
        if pid_running(hung.pid):
            os.kill(hung.pid, signal.SIGKILL)
    assert new.restarts == 1
    assert new.last_error is not None
    assert new.last_error.startswith("hung:")
    assert any("is hung" in r.getMessage() for r in caplog.records)


async def test_crash_loop_guard_stops_restarting(make_supervisor: MakeSupervisor) -> None:
    # A worker that can never start: its plug-in does not exist.
    h = await make_supervisor(
        workers={"nosuch": 1}, crash_loop_limit=2, crash_loop_window_s=60, crash_loop_cooldown_s=60
    )
    pool = h.pools["nosuch"]
    upstream = await eventually(
        lambda: next((u for u in pool.all() if "crash loop" in (u.last_error or "")), None),
        40,
        "the crash-loop guard",
    )
    assert upstream.state == "stopped"
    assert upstream.restarts == 2  # first start + 2 restarts = 3 failures > limit 2
    generation = h.supervisor.describe()["nosuch"]["workers"][0]["generation"]
    await asyncio.sleep(1.0)  # far longer than the backoff: no new attempt while resting
    report = h.supervisor.describe()["nosuch"]
    assert report["status"] == "down"
    assert report["workers"][0]["generation"] == generation == 3
    # The worker's plain-text stderr was forwarded too, wrapped as JSON.
    errors = [r for r in h.log_records() if "configuration error" in r.get("message", "")]
    assert errors
    assert errors[0]["worker_id"] == "nosuch-1"
    assert errors[0]["stream"] == "stderr"


async def test_stop_drains_in_flight_requests(make_supervisor: MakeSupervisor) -> None:
    h = await make_supervisor(workers={"notes": 2})
    assert await h.supervisor.wait_ready(30)
    routed, direct = sorted(h.pools["notes"].ready(), key=lambda u: u.id)
    assert routed.pid is not None
    assert direct.pid is not None

    async def through_router() -> tuple[int, Any]:
        routed.in_flight += 1  # as the router counts it
        try:
            return await signed_get(routed, SLOW.format(1))
        finally:
            routed.in_flight -= 1

    requests = [
        asyncio.create_task(through_router()),
        asyncio.create_task(signed_get(direct, SLOW.format(1))),
    ]
    await asyncio.sleep(0.3)  # both requests are being handled
    stopping = asyncio.create_task(h.supervisor.stop())
    await asyncio.sleep(0.3)
    assert routed.state == "draining"
    assert pid_running(routed.pid)  # not signalled while the router has requests in flight
    # The one the router did not count is finished by the worker's own graceful shutdown.
    for status, body in await asyncio.gather(*requests):
        assert (status, body) == (200, {"slept": True})
    await asyncio.wait_for(stopping, 20)
    assert not pid_running(routed.pid)
    assert not pid_running(direct.pid)
    assert {u.state for u in h.pools["notes"].all()} == {"stopped"}


async def test_rolling_restart_has_no_downtime(make_supervisor: MakeSupervisor, socket_dir: Path) -> None:
    h = await make_supervisor(workers={"notes": 2})
    assert await h.supervisor.wait_ready(30)
    pool = h.pools["notes"]
    before = {u.id: u.pid for u in pool.ready()}
    router = MiniRouter(pool)
    outcomes: list[Any] = []
    done = asyncio.Event()

    async def traffic() -> None:
        while not done.is_set():
            try:
                outcomes.append(await router.get(SLOW.format(0.02)))
            except Exception as exc:  # any failure is downtime
                outcomes.append(repr(exc))

    loop = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(0.3)
        await asyncio.wait_for(h.supervisor.rolling_restart(), 60)
        await asyncio.sleep(0.3)
    finally:
        done.set()
        await loop
        await router.close()
    assert [o for o in outcomes if o != 200] == []
    assert len(outcomes) > 20
    after = pool.ready()
    assert len(after) == 2
    assert pool.all() == after  # the old incarnations left the pool
    assert not {u.pid for u in after} & set(before.values())
    assert not {u.id for u in after} & set(before)
    assert all(u.restarts == 0 for u in after)  # a planned replacement is not a crash
    for pid in before.values():
        assert pid is not None
        assert await wait_gone(pid, 5)
    assert sockets_in(socket_dir) == {"notes-1-2.sock", "notes-2-2.sock"}


async def test_stop_during_a_rolling_restart_leaves_no_worker_behind(make_supervisor: MakeSupervisor) -> None:
    h = await make_supervisor(workers={"notes": 1})
    assert await h.supervisor.wait_ready(30)
    pool = h.pools["notes"]
    rolling = asyncio.create_task(h.supervisor.rolling_restart())
    await eventually(lambda: len(pool.all()) == 2, 10, "a replacement being started")
    await asyncio.wait_for(h.supervisor.stop(), 20)
    await asyncio.wait_for(rolling, 5)  # ends quietly: the stop cancelled it
    pids = [u.pid for u in pool.all()]
    assert len(pids) == 2
    for pid in pids:
        assert pid is not None
        assert await wait_gone(pid, 5)


# A main process in miniature: supervises two workers, prints their pids, then waits.
MAIN = """
import asyncio, json, sys
from pathlib import Path
from fittracker.router.pool import UpstreamPool
from fittracker.supervisor import Supervisor

async def main():
    pools = {"notes": UpstreamPool("notes")}
    supervisor = Supervisor(
        config_file=None, data_dir=Path(sys.argv[1]), socket_dir=Path(sys.argv[2]), pools=pools,
        workers={"notes": 2}, probe_path={"notes": "/api/v1/notes/health"},
    )
    await supervisor.start()
    assert await supervisor.wait_ready(30)
    print(json.dumps([u.pid for u in pools["notes"].ready()]), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_workers_do_not_outlive_a_killed_main_process(
    installed_test_plugins: Path, tmp_path: Path, socket_dir: Path
) -> None:
    main = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MAIN,
        str(tmp_path / "data"),
        str(socket_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=plugin_env(installed_test_plugins),
        cwd=ROOT,
    )
    assert main.stdout is not None
    pids: list[int] = []
    try:
        pids = json.loads(await asyncio.wait_for(main.stdout.readline(), 40))
        assert len(pids) == 2
        main.send_signal(signal.SIGKILL)
        await main.wait()
        for pid in pids:
            assert await wait_gone(pid, 3.0), f"worker {pid} outlived the main process"
    finally:
        if main.returncode is None:
            main.kill()
            await main.wait()
        for pid in pids:
            if pid_running(pid):
                os.kill(pid, signal.SIGKILL)
