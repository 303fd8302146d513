"""One API, two deployments: a client for the single process and for split mode alike.

``single``: the whole app in this process (aiohttp test server). ``split``: a real
``fittracker serve`` subprocess whose plug-ins run as worker processes behind its router
(users x1, workouts x2, notifications x2), shared by the tests of a session for speed; each test uses its own
users, so they do not interfere. Every JSON response is checked against the OpenAPI spec.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.spec import check_response

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")
FAST_HASHING = "argon2_time_cost = 1\nargon2_memory_kib = 1024\nargon2_parallelism = 1\n"
# Webhook pushes on, and a quick delivery loop: the tests wait for real deliveries.
WEBHOOK_SECRET = "whsec_" + "dGVzdC13ZWJob29rLXNlY3JldC1rZXktMzItYnl0ZXM="
DELIVERY = {
    "webhook_secret": WEBHOOK_SECRET,
    "delivery_lease_s": 2.0,
    "delivery_poll_interval_s": 0.1,
    "delivery_backoff_base_s": 0.2,
}
FAST_DELIVERY = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in DELIVERY.items())

SPLIT_CONFIG = f"""
[server]
shutdown_timeout = 5.0

[ratelimit]
enabled = false

[log]
level = "WARNING"

[internal]
secret = "test-secret-for-the-split-suite"

[supervisor]
health_interval_s = 0.5
hung_after_s = 5.0

[router]
probe_interval_s = 0.5

[users]
mode = "process"
workers = 1
{FAST_HASHING}
[workouts]
mode = "process"
workers = 2

[notifications]
mode = "process"
workers = 2
auth_check_interval_s = 0.2
{FAST_DELIVERY}
[ai]
mode = "process"
workers = 1
"""


@dataclass
class SplitServer:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def worker_pids(self, plugin: str) -> list[int]:
        out = subprocess.run(["pgrep", "-f", f"worker --plugin {plugin}"], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        return [p for p in pids if _parent(p) == self.proc.pid]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


SINGLE_CONFIG = f"""
[ratelimit]
enabled = false

[log]
level = "WARNING"

[users]
{FAST_HASHING}
[notifications]
auth_check_interval_s = 0.2
{FAST_DELIVERY}"""


def start_split_server(
    tmp: Path, env_overrides: dict[str, str] | None = None, log_file: Path | None = None
) -> SplitServer:
    """SPLIT_CONFIG, changed by ``FITTRACKER__SECTION__KEY`` ``env_overrides``; the logs of the
    server and its workers go to ``log_file`` if given."""
    return _start(SPLIT_CONFIG, tmp, env_overrides, log_file)


def start_single_server(
    tmp: Path, env_overrides: dict[str, str] | None = None, log_file: Path | None = None
) -> SplitServer:
    """``fittracker serve`` with every plug-in in one process; data in ``tmp/data`` (kept on restart)."""
    return _start(SINGLE_CONFIG, tmp, env_overrides, log_file)


def _start(
    config_text: str, tmp: Path, env_overrides: dict[str, str] | None, log_file: Path | None
) -> SplitServer:
    config = tmp / "server.toml"
    config.write_text(config_text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    env.update(env_overrides or {})
    with open(log_file or os.devnull, "a", encoding="utf-8") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "fittracker", "serve", "--config", str(config), "--port", "0",
             "--data-dir", str(tmp / "data")],
            stdout=subprocess.PIPE, stderr=log, env=env, text=True, cwd=ROOT,
        )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = LISTENING.search(line)
    if not match:
        proc.kill()
        raise AssertionError(f"server did not start: {line!r}")
    return SplitServer(proc, match.group(1), tmp / "data")


@pytest.fixture(scope="session")
def split_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitServer]:
    server = start_split_server(tmp_path_factory.mktemp("split"))
    yield server
    server.stop()


class LiveClient:
    """The part of aiohttp's TestClient the API tests use, against a real server."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, spec: dict[str, Any]) -> None:
        self.base_url = base_url
        self.session = session
        self.spec = spec
        self.violations: list[str] = []
        self._templates = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in spec["paths"]
        ]

    def _template(self, path: str) -> str | None:
        path = path.split("?", 1)[0]
        matches = [template for rx, template in self._templates if rx.match(path)]
        # The most literal template wins (/workouts/{id} vs /workouts/summary).
        return min(matches, key=lambda t: t.count("{")) if matches else None

    async def request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        resp = await self.session.request(method, self.base_url + path, **kwargs)
        await resp.read()
        template = self._template(path)
        if template is not None and "json" in (resp.content_type or "") and resp.status != 204:
            self.violations.extend(
                check_response(self.spec, method, template, resp.status, await resp.json())
            )
        return resp

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.request("DELETE", path, **kw)


@pytest.fixture(params=["single", "split"])
async def api(request: pytest.FixtureRequest, make_client: Any) -> AsyncIterator[Any]:
    """A client for the users, workouts, notifications and AI API in each deployment."""
    if request.param == "single":
        config = {
            "users": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
            "notifications": {"auth_check_interval_s": 0.2, **DELIVERY},
        }
        yield await make_client(plugins=["users", "workouts", "notifications", "ai"], config=config)
        return
    async with live_client(request.getfixturevalue("split_server")) as client:
        yield client


@pytest.fixture(scope="session")
def single_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitServer]:
    """A real single-process ``fittracker serve``, shared by the tests of a session."""
    server = start_single_server(tmp_path_factory.mktemp("single"))
    yield server
    server.stop()


@pytest.fixture(params=["single", "split"])
async def live_api(request: pytest.FixtureRequest) -> AsyncIterator[LiveClient]:
    """Like ``api``, but both deployments are real server processes shared by the session: for
    test modules with hundreds of small cases, where a fresh application per case costs most."""
    async with live_client(request.getfixturevalue(f"{request.param}_server")) as client:
        yield client


@contextlib.asynccontextmanager
async def live_client(server: SplitServer) -> AsyncIterator[LiveClient]:
    """A client of a running server; fails the test if a response did not match the spec."""
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/api/v1/openapi.json") as resp:
            spec = await resp.json()
        client = LiveClient(server.url, session, spec)
        yield client
    assert not client.violations, "responses that do not match the OpenAPI spec:\n" + "\n".join(
        client.violations
    )
