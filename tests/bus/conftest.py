"""Fixtures for the event-bus tests.

``make_bus`` is parametrized over every backend (the conformance suite); the Redis ones
run against the real redis-server of ``tests/redis_server.py``, each on a stream of its own.
``make_sqlite_bus`` is for the SQLite-specific tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fittracker.bus import SqliteEventBus

from .harness import COMMON_FAST, BusHarness, MakeBus, RedisHarness, SqliteHarness

MakeSqliteBus = Callable[..., SqliteEventBus]


@pytest.fixture(params=["sqlite", "redis"])
async def bus_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    harness: BusHarness
    if request.param == "redis":
        prefix: str = request.getfixturevalue("redis_prefix")
        harness = RedisHarness(request.getfixturevalue("redis_url"), stream=f"{prefix}events")
    else:
        harness = SqliteHarness(tmp_path)
    yield harness
    await harness.close()


@pytest.fixture
def make_bus(bus_harness: BusHarness) -> MakeBus:
    """Build buses on one backend (each one stands in for a process); all closed afterwards."""
    return bus_harness.make


@pytest.fixture
async def make_sqlite_bus(tmp_path: Path) -> AsyncIterator[MakeSqliteBus]:
    """SQLite buses on one file in ``tmp_path``; all closed afterwards."""
    buses: list[SqliteEventBus] = []

    def make(**options: Any) -> SqliteEventBus:
        bus = SqliteEventBus(tmp_path, **{**COMMON_FAST, **SqliteHarness.fast, **options})
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
