"""A real ``redis-server`` for the tests of the Redis backends (loaded by tests/conftest.py).

- ``redis_server`` (session): one server shared by every test. Tests keep out of each
  other's way with unique key names (see ``redis_prefix``), never by flushing.
- ``private_redis`` (function): a server of the test's own, which it may stop and restart
  (outage tests) without disturbing the shared one.

Without the binary the Redis tests are skipped, except under CI (``CI`` set and not
false/0), where a missing redis-server is a broken build and fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_BINARY = "redis-server"
_START_TIMEOUT = 10.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process without persistence; restartable on the same port."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        # No persistence: a restart starts empty, like a lost cache node.
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        args = [self.binary, *(part for name, value in options.items() for part in (f"--{name}", value))]
        log = (self.workdir / "redis.log").open("ab")
        self._proc = subprocess.Popen(
            [*args, "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    output = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited with {self._proc.returncode}:\n{output}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not answer PING in time")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its data is gone (no persistence)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def _binary() -> str:
    found = shutil.which(REDIS_BINARY)
    if found is None:
        message = f"{REDIS_BINARY} is not installed (apt-get install redis-server)"
        if _in_ci():
            pytest.fail(f"{message}; CI must run the Redis tests", pytrace=False)
        pytest.skip(f"{message}; Redis backend tests skipped")
    return found


def _started(workdir: Path) -> RedisServer:
    binary = _binary()
    error: Exception | None = None
    for _ in range(3):  # another process may grab the free port before redis-server binds it
        server = RedisServer(binary, workdir)
        try:
            server.start()
        except RuntimeError as exc:
            server.stop()
            error = exc
            continue
        return server
    raise RuntimeError(f"could not start redis-server: {error}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The shared server; do not stop it (use ``private_redis`` for that)."""
    server = _started(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, on the shared server."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A server of this test's own: ``stop()`` and ``start()`` it freely."""
    server = _started(tmp_path_factory.mktemp("redis-private"))
    yield server
    server.stop()
