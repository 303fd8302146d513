"""``fittracker worker``: one plug-in on a Unix socket or TCP, signed requests, no orphans."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.worker.helpers import (
    NOTES_HEALTH,
    ROOT,
    plugin_env,
    signed,
    start_worker,
    unix_session,
    wait_gone,
    worker_argv,
)

SECRET = "test-shared-secret"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: Unix socket paths are limited to about 100 bytes."""
    with tempfile.TemporaryDirectory(prefix="ftw-") as name:
        yield Path(name)


async def test_serves_one_plugin_on_a_unix_socket(
    installed_test_plugins: Path, short_dir: Path, tmp_path: Path
) -> None:
    sock = short_dir / "notes.sock"
    worker = await start_worker(
        ["--plugin", "notes", "--unix", str(sock), "--data-dir", str(tmp_path), "--worker-id", "notes-7"],
        plugin_env(installed_test_plugins),
    )
    assert worker.ready_line == f"FitTracker worker notes notes-7 ready on unix://{sock}"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    async with unix_session(sock) as session:
        async with session.get(f"http://worker{NOTES_HEALTH}") as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["plugin"] == "notes"
        # Only its own plug-in is loaded, and the router (not the worker) rate-limits.
        async with session.get("http://worker/api/v1/auth/health") as resp:
            assert resp.status == 404
        async with session.get("http://worker/api/v1/notes/stats") as resp:
            assert resp.status == 200
            assert not any(h.lower().startswith("ratelimit") for h in resp.headers)
    assert await worker.stop() == 0
    assert not sock.exists()
    records = [json.loads(line) for line in worker.stderr if line.startswith("{")]
    assert records
    assert all(r["worker_id"] == "notes-7" for r in records)
    assert records[-1]["message"] == "stopped"


async def test_replaces_a_stale_socket(installed_test_plugins: Path, short_dir: Path, tmp_path: Path) -> None:
    import socket

    sock = short_dir / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(sock))
    leftover.close()  # the file stays behind, as after a SIGKILL
    worker = await start_worker(
        ["--plugin", "notes", "--unix", str(sock), "--data-dir", str(tmp_path)],
        plugin_env(installed_test_plugins),
    )
    async with unix_session(sock) as session, session.get(f"http://worker{NOTES_HEALTH}") as resp:
        assert resp.status == 200
    assert await worker.stop() == 0


async def test_serves_over_tcp(installed_test_plugins: Path, tmp_path: Path) -> None:
    worker = await start_worker(
        ["--plugin", "notes", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path)],
        plugin_env(installed_test_plugins),
    )
    assert worker.url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as session, session.get(f"{worker.url}{NOTES_HEALTH}") as resp:
        assert resp.status == 200
    assert await worker.stop() == 0


async def test_with_a_secret_only_signed_requests_pass(installed_test_plugins: Path, tmp_path: Path) -> None:
    worker = await start_worker(
        ["--plugin", "notes", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path)],
        plugin_env(installed_test_plugins, FITTRACKER__INTERNAL__SECRET=SECRET),
    )
    path = "/api/v1/notes/slow?seconds=0"
    async with aiohttp.ClientSession() as session:
        for headers in (
            {},  # unsigned
            signed("another-secret", "GET", path),  # signed by someone else
            signed(SECRET, "GET", "/api/v1/notes/stats"),  # a signature for another request
            {**signed(SECRET, "GET", path), "X-Request-ID": "other-request-01"},  # id swapped
        ):
            async with session.get(f"{worker.url}{path}", headers=headers) as resp:
                assert resp.status == 401
                assert resp.content_type == "application/problem+json"
                body = await resp.json()
                assert body["status"] == 401
                assert body["request_id"]
        async with session.get(f"{worker.url}{NOTES_HEALTH}") as resp:
            assert resp.status == 401  # health probes need a signature too
        async with session.get(f"{worker.url}{path}", headers=signed(SECRET, "GET", path)) as resp:
            assert resp.status == 200
            assert resp.headers["X-Request-ID"] == "test-request-0001"
        headers = signed(SECRET, "GET", NOTES_HEALTH, "probe-request-02")
        async with session.get(f"{worker.url}{NOTES_HEALTH}", headers=headers) as resp:
            assert resp.status == 200
    assert await worker.stop() == 0
    assert SECRET not in "\n".join(worker.stderr)


# An intermediate parent: starts a worker that watches it, reports the pid, then waits.
PARENT = """
import subprocess, sys, os, time
worker = subprocess.Popen(sys.argv[1:] + ["--parent-pid", str(os.getpid())], stdout=subprocess.PIPE)
print(worker.pid, flush=True)
print(worker.stdout.readline().decode().strip(), flush=True)
time.sleep(120)
"""


async def test_exits_when_its_parent_is_killed(installed_test_plugins: Path, short_dir: Path) -> None:
    args = ["--plugin", "notes", "--unix", str(short_dir / "w.sock"), "--data-dir", str(short_dir / "d")]
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        *worker_argv(*args),
        stdout=asyncio.subprocess.PIPE,
        env=plugin_env(installed_test_plugins),
        cwd=ROOT,
    )
    assert parent.stdout is not None
    worker_pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    try:
        ready = (await asyncio.wait_for(parent.stdout.readline(), 30)).decode()
        assert "ready on unix://" in ready
        parent.send_signal(signal.SIGKILL)
        await parent.wait()
        assert await wait_gone(worker_pid, 3.0), "the worker outlived its parent"
    finally:
        if parent.returncode is None:
            parent.kill()
        if not await wait_gone(worker_pid, 0):
            os.kill(worker_pid, signal.SIGKILL)


def test_unknown_plugin_is_a_configuration_error(installed_test_plugins: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        worker_argv("--plugin", "nosuch", "--unix", str(tmp_path / "x.sock"), "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        env=plugin_env(installed_test_plugins),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "plug-in 'nosuch' is not loaded" in result.stderr
    assert result.stdout == ""
