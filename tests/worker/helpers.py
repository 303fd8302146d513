"""Real ``fittracker worker`` processes for tests: start, read the ready line, talk, stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from fittracker import internal_auth

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"^FitTracker worker (\S+) (\S+) ready on (\S+)$")
NOTES_HEALTH = "/api/v1/notes/health"


def plugin_env(site: Path, **extra: str) -> dict[str, str]:
    """The environment of a process that finds the test plug-ins (``notes``) installed."""
    path = os.pathsep.join([str(site), str(ROOT / "tests" / "plugins")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    return {**env, "PYTHONPATH": path, **extra}


def worker_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fittracker", "worker", *args]


@dataclass
class RunningWorker:
    proc: asyncio.subprocess.Process
    ready_line: str
    url: str
    stderr: list[str] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    async def stop(self, within_s: float = 20) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), within_s)
        if self._drain is not None:
            await asyncio.wait_for(self._drain, 5)
        return code


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    # Keep reading: a worker whose stderr pipe fills up would block on its next log line.
    async for raw in stream:
        into.append(raw.decode().rstrip("\n"))


async def start_worker(args: list[str], env: dict[str, str], within_s: float = 30) -> RunningWorker:
    proc = await asyncio.create_subprocess_exec(
        *worker_argv(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr: list[str] = []
    drain = asyncio.create_task(_collect(proc.stderr, stderr))
    line = (await asyncio.wait_for(proc.stdout.readline(), within_s)).decode().strip()
    match = READY.match(line)
    if not match:
        proc.kill()
        await proc.wait()
        await drain
        raise AssertionError(f"no ready line: {line!r}\n" + "\n".join(stderr))
    return RunningWorker(proc, line, match.group(3), stderr, drain)


def unix_session(socket_path: str | Path) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path)))


def signed(secret: str, method: str, path_qs: str, request_id: str = "test-request-0001") -> dict[str, str]:
    return {
        "X-Request-ID": request_id,
        internal_auth.HEADER: internal_auth.sign(secret, method, path_qs, request_id),
    }


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(pid: int, within_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        if not pid_running(pid):
            return True
        await asyncio.sleep(0.05)
    return not pid_running(pid)
