"""One incarnation of a worker: its OS process, Unix socket, upstream entry and log pumps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from fittracker import internal_auth
from fittracker.http.requestid import HEADER as REQUEST_ID_HEADER
from fittracker.ids import random_hex
from fittracker.router.pool import Upstream

READY_LINE = re.compile(r"^FitTracker worker (?P<plugin>\S+) (?P<id>\S+) ready on (?P<url>\S+)$")
LINE_LIMIT = 1 << 20  # a worker's log line may be long (tracebacks are one JSON line)

LogSink = Callable[[dict[str, Any]], None]


def log_record(line: str, *, worker_id: str, plugin: str, stream: str) -> dict[str, Any]:
    """A worker's output line as a JSON log record tagged with where it came from."""
    record: dict[str, Any] | None = None
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            record = parsed if isinstance(parsed, dict) else None
    if record is None:
        record = {"message": line, "stream": stream}
    record["worker_id"] = worker_id
    record["plugin"] = plugin
    return record


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class WorkerProcess:
    """A ``fittracker worker`` child process, watched from the supervisor's event loop."""

    def __init__(
        self,
        *,
        plugin: str,
        worker_id: str,
        generation: int,
        socket_path: Path,
        argv: Sequence[str],
        env: Mapping[str, str],
        upstream: Upstream,
        sink: LogSink,
    ) -> None:
        self.plugin = plugin
        self.worker_id = worker_id
        self.generation = generation
        self.socket_path = socket_path
        self.upstream = upstream
        self._argv = list(argv)
        self._env = dict(env)
        self._sink = sink
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._exit: asyncio.Task[int] | None = None
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
            limit=LINE_LIMIT,
            # Its own session: a Ctrl-C on the terminal reaches only the supervisor, which
            # then drains the workers in order instead of having them all stop at once.
            start_new_session=True,
        )
        self.upstream.pid = self._proc.pid
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._exit = asyncio.create_task(self._proc.wait(), name=f"{self.worker_id}-exit")
        self._pumps = [
            asyncio.create_task(self._pump(self._proc.stdout, "stdout"), name=f"{self.worker_id}-stdout"),
            asyncio.create_task(self._pump(self._proc.stderr, "stderr"), name=f"{self.worker_id}-stderr"),
        ]

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # longer than LINE_LIMIT: the reader skipped it
                self._forward(f"(a {name} line longer than {LINE_LIMIT} bytes was dropped)", name)
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if name == "stdout" and not self._ready.is_set() and READY_LINE.match(line):
                self._ready.set()
            elif line:
                self._forward(line, name)

    def _forward(self, line: str, stream: str) -> None:
        self._sink(log_record(line, worker_id=self.worker_id, plugin=self.plugin, stream=stream))

    async def wait_ready_line(self, within_s: float) -> bool:
        """Whether the worker announced it is listening (False if it exited or took too long)."""
        assert self._exit is not None
        waiter = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait({waiter, self._exit}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return self._ready.is_set()

    async def wait_exit(self, within_s: float | None) -> int | None:
        """The exit code, or None if still running after ``within_s`` seconds."""
        if self._exit is None:
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._exit), within_s)
        return None

    def send(self, sig: signal.Signals) -> None:
        if self.running and self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    async def terminate(self, grace_s: float) -> int | None:
        """SIGTERM (the worker finishes in-flight requests), then SIGKILL after ``grace_s``."""
        self.send(signal.SIGTERM)
        code = await self.wait_exit(grace_s)
        if code is None:
            self.send(signal.SIGKILL)
            code = await self.wait_exit(5.0)
        return code

    async def kill(self) -> int | None:
        self.send(signal.SIGKILL)
        return await self.wait_exit(5.0)

    async def probe(self, path: str, secret: str, limit_s: float) -> str | None:
        """GET ``path`` over the worker's socket: None when healthy, else what went wrong."""
        request_id = f"probe-{random_hex()}"
        headers = {REQUEST_ID_HEADER: request_id}
        if secret:
            headers[internal_auth.HEADER] = internal_auth.sign(secret, "GET", path, request_id)
        try:
            async with (
                aiohttp.ClientSession(
                    connector=aiohttp.UnixConnector(path=str(self.socket_path)),
                    timeout=aiohttp.ClientTimeout(total=limit_s),
                ) as session,
                session.get(f"http://worker{path}", headers=headers) as resp,
            ):
                if resp.status == 200:
                    return None
                return f"health probe answered {resp.status}"
        except TimeoutError:
            return f"health probe timed out after {limit_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"health probe failed: {type(exc).__name__}: {exc}"

    async def close(self) -> None:
        """After exit: let the log pumps finish and remove a socket the worker left behind."""
        if self._pumps:
            _, pending = await asyncio.wait(self._pumps, timeout=2.0)
            for task in pending:  # a grandchild may still hold the pipe open
                task.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
