"""Helpers shared by the event-bus tests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from fittracker.bus import Event, SqliteEventBus

# Short intervals keep the suite fast; tests that need other values override them.
FAST: dict[str, Any] = {"poll_interval": 0.01, "visibility_timeout": 0.3, "close_timeout": 2.0}

MakeBus = Callable[..., SqliteEventBus]


class RecordingMetrics:
    def __init__(self) -> None:
        self.published_types: list[str] = []
        self.outcomes: list[tuple[str, str, str]] = []

    def published(self, event_type: str) -> None:
        self.published_types.append(event_type)

    def handled(self, group: str, event_type: str, outcome: str) -> None:
        self.outcomes.append((group, event_type, outcome))


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the bus file directly, as an operator would."""
    with closing(sqlite3.connect(data_dir / "events.db")) as db:
        return db.execute(sql, params).fetchall()


def collector(into: list[Event]) -> Callable[[Event], Any]:
    async def handle(event: Event) -> None:
        into.append(event)

    return handle
