"""Helpers shared by the event-bus tests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from fittracker.bus import Event


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


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """``wait_until`` for checks that have to ask the backend."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the SQLite bus file directly, as an operator would."""
    with closing(sqlite3.connect(data_dir / "events.db")) as db:
        return db.execute(sql, params).fetchall()


def collector(into: list[Event]) -> Callable[[Event], Any]:
    async def handle(event: Event) -> None:
        into.append(event)

    return handle


async def stream_entries(client: aioredis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """Every entry of a Redis stream, oldest first (``client`` decodes responses)."""
    entries: Any = await client.xrange(stream)
    return [(str(entry_id), dict(fields)) for entry_id, fields in entries]
