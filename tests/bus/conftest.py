"""Fixtures for the event-bus tests: buses on a real file in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fittracker.bus import SqliteEventBus

from .helpers import FAST, MakeBus


@pytest.fixture
async def make_bus(tmp_path: Path) -> AsyncIterator[MakeBus]:
    """Build buses on one file (each one stands in for a process); all closed afterwards."""
    buses: list[SqliteEventBus] = []

    def make(**options: Any) -> SqliteEventBus:
        bus = SqliteEventBus(tmp_path, **{**FAST, **options})
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
