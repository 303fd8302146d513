"""SQLite-only behaviour of the event bus: the file, group offsets, retention, ``open_bus``.

The contract every backend honours lives in test_conformance.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fittracker.bus import Event, SqliteEventBus, open_bus

from .conftest import MakeSqliteBus
from .helpers import collector, query, wait_until


async def test_the_offset_moves_past_unsubscribed_events(
    make_sqlite_bus: MakeSqliteBus, tmp_path: Path
) -> None:
    bus = make_sqlite_bus()
    got: list[Event] = []
    bus.subscribe("g", {"a": collector(got)})
    await bus.start()
    for kind in ("b", "a", "c", "a", "b"):
        await bus.publish(kind, {}, source="/t")
    await wait_until(lambda: len(got) == 2)
    # Unsubscribed events are never claimed, yet never scanned again either.
    await wait_until(lambda: query(tmp_path, "SELECT last_delivered_seq FROM groups") == [(5,)])
    assert query(tmp_path, "SELECT COUNT(*) FROM pending") == [(0,)]


async def test_events_of_another_process_arrive_by_polling(make_sqlite_bus: MakeSqliteBus) -> None:
    got: list[Event] = []
    consumer = make_sqlite_bus(poll_interval=0.02)
    consumer.subscribe("g", {"a": collector(got)})
    await consumer.start()
    await asyncio.sleep(0.05)  # the consumer is idle, waiting for a wake-up
    sent = await make_sqlite_bus().publish("a", {}, source="/t")
    await wait_until(lambda: got == [sent], within=2)


async def test_trim_deletes_only_events_every_group_acknowledged(
    make_sqlite_bus: MakeSqliteBus, tmp_path: Path
) -> None:
    got: list[Event] = []
    bus = make_sqlite_bus()
    bus.subscribe("g", {"a": collector(got)})
    await bus.start()
    await bus.publish("a", {"n": 0}, source="/t")
    await bus.publish("a", {"n": 1}, source="/t")
    await wait_until(lambda: len(got) == 2)
    await bus.close()
    publisher = make_sqlite_bus()
    unseen = await publisher.publish("a", {"n": 2}, source="/t")
    assert await publisher.trim(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert query(tmp_path, "SELECT id FROM events") == [(unseen.id,)]


async def test_open_bus_and_ping(tmp_path: Path) -> None:
    bus = open_bus("sqlite", data_dir=tmp_path / "data", consumer="worker-1", poll_interval=0.01)
    try:
        assert isinstance(bus, SqliteEventBus)
        assert bus.consumer == "worker-1"
        await bus.ping()
        assert (tmp_path / "data" / "events.db").exists()
        bus.subscribe("g", {"a": collector([])})
        await bus.start()
    finally:
        await bus.close()
    with pytest.raises(ValueError, match="valid backends: sqlite, redis"):
        open_bus("kafka", data_dir=tmp_path)


async def test_invalid_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="visibility_timeout must be positive"):
        SqliteEventBus(tmp_path, visibility_timeout=0)
