"""Split mode beyond local workers: SIGHUP rolling restarts and remote upstreams."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.deployments import FAST_HASHING, LISTENING, ROOT, start_split_server
from tests.helpers import DEFAULT_PASSWORD


async def test_sighup_rolls_workers_without_downtime(tmp_path: Path) -> None:
    server = start_split_server(tmp_path)
    try:
        before = set(server.worker_pids("workouts"))
        failures: list[int] = []
        done = asyncio.Event()
        async with aiohttp.ClientSession() as session:

            async def traffic() -> None:
                while not done.is_set():
                    async with session.get(f"{server.url}/api/v1/workouts/health") as resp:
                        if resp.status != 200:
                            failures.append(resp.status)

            load = [asyncio.create_task(traffic()) for _ in range(3)]
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while not (
                before.isdisjoint(server.worker_pids("workouts")) and len(server.worker_pids("workouts")) == 2
            ):
                assert time.monotonic() < deadline, "workers were not replaced"
                await asyncio.sleep(0.2)
            done.set()
            await asyncio.gather(*load)
        assert failures == []
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_remote_upstream_behind_a_router(tmp_path: Path) -> None:
    """A worker on "another host" (a TCP port) serves users; it refuses unsigned requests."""
    secret = "remote-test-secret"
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    env["FITTRACKER__INTERNAL__SECRET"] = secret
    worker_config = tmp_path / "worker.toml"
    worker_config.write_text(f"[users]\n{FAST_HASHING}", encoding="utf-8")
    worker = subprocess.Popen(
        [sys.executable, "-m", "fittracker", "worker", "--plugin", "users", "--host", "127.0.0.1",
         "--port", str(port), "--data-dir", str(data), "--config", str(worker_config)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, cwd=ROOT,
    )  # fmt: skip
    router_config = tmp_path / "router.toml"
    router_config.write_text(
        f'[internal]\nsecret = "{secret}"\n[ratelimit]\nenabled = false\n'
        f'[users]\nmode = "remote"\nupstreams = ["http://127.0.0.1:{port}"]\n{FAST_HASHING}'
        "[router]\nprobe_interval_s = 0.2\n",
        encoding="utf-8",
    )
    router = None
    try:
        assert worker.stdout is not None and "ready on" in worker.stdout.readline()
        router = subprocess.Popen(
            [sys.executable, "-m", "fittracker", "serve", "--config", str(router_config), "--port", "0",
             "--data-dir", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            text=True, cwd=ROOT,
        )  # fmt: skip
        assert router.stdout is not None
        match = LISTENING.search(router.stdout.readline())
        assert match, "router did not start"
        base = match.group(1)
        async with aiohttp.ClientSession() as session:
            body = {"email": "remote@example.com", "password": DEFAULT_PASSWORD, "name": "Remote"}
            async with session.post(f"{base}/api/v1/auth/register", json=body) as resp:
                assert resp.status == 201, await resp.text()
            async with session.get(f"{base}/health/services") as resp:
                users = (await resp.json())["services"]["users"]
                assert users["mode"] == "remote" and users["workers"][0]["state"] == "ready"
            # the worker's own port is no side door
            async with session.post(f"http://127.0.0.1:{port}/api/v1/auth/login", json=body) as resp:
                assert resp.status == 401
    finally:
        for proc in (router, worker):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
