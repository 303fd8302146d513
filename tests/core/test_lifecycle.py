"""The real server process: start-up line, JSON logs, graceful SIGTERM, run.py, plugins CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


def env_with(site: Path) -> dict[str, str]:
    path = os.pathsep.join([str(site), str(ROOT / "tests" / "plugins")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    return {**env, "PYTHONPATH": path}


class Server:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = LISTENING.search(line)
        if not match:
            self.proc.kill()
            raise AssertionError(
                f"no listening line: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.url = match.group(1)

    def stop(self, timeout: float = 20, *, signal_sent: bool = False) -> tuple[int, str]:
        if not signal_sent:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


@pytest.fixture
def server(installed_test_plugins: Path, tmp_path: Path) -> Iterator[Server]:
    srv = Server(
        [sys.executable, "-m", "fittracker", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        env_with(installed_test_plugins),
    )
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


async def test_sigterm_finishes_in_flight_requests(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(session.get(f"{server.url}/api/v1/notes/slow?seconds=1"))
        await asyncio.sleep(0.3)  # the request is being handled
        server.proc.send_signal(signal.SIGTERM)
        resp = await slow
        assert resp.status == 200
        assert await resp.json() == {"slept": True}
    code, err = await asyncio.to_thread(server.stop, signal_sent=True)
    assert code == 0, err
    messages = [json.loads(line)["message"] for line in err.splitlines() if line.startswith("{")]
    assert "shutting down: finishing in-flight requests" in messages
    assert messages[-1] == "stopped"


async def test_json_logs_carry_request_ids_and_no_secrets(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"X-Request-ID": "req-abcdef-123", "Authorization": "Bearer very.secret.token"}
        async with session.get(f"{server.url}/health/services", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["X-Request-ID"] == "req-abcdef-123"
    _, err = await asyncio.to_thread(server.stop)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "fittracker.access"]
    assert access, err
    assert access[0]["request_id"] == "req-abcdef-123"
    assert {"method", "path", "status", "duration_ms", "plugin", "user_id"} <= set(access[0])
    assert "very.secret.token" not in err


async def test_liveness_probes_are_answered_counted_and_not_logged(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{server.url}/health", headers={"X-Request-ID": "probe-0001"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["status"] == "ok"
                assert resp.headers["X-Request-ID"] == "probe-0001"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
        async with session.get(f"{server.url}/metrics") as resp:
            exposition = await resp.text()
    assert 'route="/health",status="200"} 3.0' in exposition
    _, err = await asyncio.to_thread(server.stop)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    paths = [r["path"] for r in records if r.get("logger") == "fittracker.access"]
    assert paths == ["/metrics"], err


def test_run_py_is_fittracker_serve(installed_test_plugins: Path, tmp_path: Path) -> None:
    srv = Server(
        [sys.executable, "run.py", "--port", "0", "--data-dir", str(tmp_path / "d"), "--host", "127.0.0.1"],
        env_with(installed_test_plugins),
    )
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        assert (tmp_path / "d" / "keys" / "ed25519.pem").exists()
    finally:
        code, err = srv.stop()
    assert code == 0, err


def test_plugins_command_lists_plugins(installed_test_plugins: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fittracker", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env_with(installed_test_plugins),
        timeout=60,
        check=True,
    )
    listing = json.loads(result.stdout)
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert by_name["notes"]["version"] == "1.2.3"
    assert by_name["notes"]["prefixes"] == ["/api/v1/notes"]
    assert "fittracker_setup" in by_name["notes"]["hooks"]
    assert "broken" in listing["failed"]
    text = subprocess.run(
        [sys.executable, "-m", "fittracker", "plugins"],
        capture_output=True,
        text=True,
        env=env_with(installed_test_plugins),
        timeout=60,
        check=True,
    ).stdout
    assert "notes 1.2.3" in text and "FAILED" in text
