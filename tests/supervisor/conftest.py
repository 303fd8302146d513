"""A supervisor of real ``notes`` worker processes, with intervals short enough for tests."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fittracker.router.pool import UpstreamPool
from fittracker.supervisor import Supervisor
from tests.worker.helpers import ROOT

SECRET = "supervisor-test-secret"
FAST: dict[str, Any] = {
    "health_interval_s": 0.2,
    "probe_timeout_s": 0.5,
    "hung_after_s": 1.0,
    "ready_timeout_s": 30.0,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 0.5,
    "drain_timeout_s": 5.0,
    "term_timeout_s": 10.0,
}


class Harness:
    def __init__(self, supervisor: Supervisor, pools: dict[str, UpstreamPool], logs: io.StringIO) -> None:
        self.supervisor = supervisor
        self.pools = pools
        self.logs = logs

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines()]


MakeSupervisor = Callable[..., Awaitable[Harness]]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """Short: Unix socket paths are limited to about 100 bytes."""
    with tempfile.TemporaryDirectory(prefix="fts-") as name:
        yield Path(name) / "sockets"


@pytest.fixture
async def make_supervisor(
    installed_test_plugins: Path, tmp_path: Path, socket_dir: Path
) -> AsyncIterator[MakeSupervisor]:
    """``await make_supervisor(workers={"notes": 2}, **overrides)``: started, stopped at the end."""
    started: list[Supervisor] = []
    pythonpath = f"{installed_test_plugins}:{ROOT / 'tests' / 'plugins'}"

    async def factory(workers: dict[str, int] | None = None, **overrides: Any) -> Harness:
        counts = workers or {"notes": 2}
        pools = {name: UpstreamPool(name) for name in counts}
        logs = io.StringIO()
        supervisor = Supervisor(
            config_file=None,
            data_dir=tmp_path / "data",
            socket_dir=socket_dir,
            pools=pools,
            workers=counts,
            secret=SECRET,
            probe_path={"notes": "/api/v1/notes/health"},
            extra_env={"PYTHONPATH": pythonpath},
            log_stream=logs,
            **{**FAST, **overrides},
        )
        await supervisor.start()
        started.append(supervisor)
        return Harness(supervisor, pools, logs)

    yield factory
    for supervisor in started:
        await supervisor.stop()
