"""The Redis bus's outbox: durable, ordered, and forwarded by one process at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fittracker.bus import Event
from fittracker.bus.outbox import Outbox


@pytest.fixture
async def boxes(tmp_path: Path) -> AsyncIterator[tuple[Outbox, Outbox]]:
    """Two processes' view of one outbox file."""
    one, two = Outbox(tmp_path, lease_s=30), Outbox(tmp_path, lease_s=30)
    yield one, two
    await one.close()
    await two.close()


def events(n: int) -> list[Event]:
    return [Event(type="a", source="/t", data={"n": i}) for i in range(n)]


async def test_entries_come_back_in_publish_order_and_survive_a_reopen(tmp_path: Path) -> None:
    first = Outbox(tmp_path)
    kept = events(5)
    for event in kept:
        await first.put(event)
    await first.close()
    again = Outbox(tmp_path)
    try:
        leased = await again.lease(10)
        assert [event for _, event in leased] == kept
        await again.forwarded([seq for seq, _ in leased])
        assert await again.size() == 0
    finally:
        await again.close()


async def test_one_forwarder_at_a_time(boxes: tuple[Outbox, Outbox]) -> None:
    one, two = boxes
    for event in events(4):
        await one.put(event)
    batch = await one.lease(2)
    assert len(batch) == 2
    assert await two.lease(10) == []  # a live lease elsewhere: wait, or the order would break
    await one.forwarded([seq for seq, _ in batch])
    rest = await two.lease(10)
    assert [event.data["n"] for _, event in rest] == [2, 3]


async def test_a_released_or_expired_lease_is_sent_again(tmp_path: Path) -> None:
    box = Outbox(tmp_path, lease_s=0.05)
    try:
        for event in events(2):
            await box.put(event)
        batch = await box.lease(10)
        await box.release([batch[1][0]])
        assert await box.lease(10) == []  # the first entry's lease is still live
        await asyncio.sleep(0.06)
        again = await box.lease(10)
        assert [event.data["n"] for _, event in again] == [0, 1]
    finally:
        await box.close()
