"""Redis-only behaviour of the event bus: trimming, the stream layout, outages, ``open_bus``.

The contract every backend honours lives in test_conformance.py. These run against the
real redis-server of tests/redis_server.py, each on a stream of its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
import redis.exceptions

from fittracker.bus import Event, RedisEventBus, open_bus
from fittracker.bus.outbox import Outbox
from tests.redis_server import RedisServer

from .helpers import RecordingMetrics, collector, stream_entries, wait_until

FAST = {"poll_block_ms": 20, "visibility_timeout": 0.3, "close_timeout": 2.0}


@pytest.fixture
async def inspect(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def stream(redis_prefix: str) -> str:
    return f"{redis_prefix}events"


async def test_open_bus_builds_a_redis_bus(redis_url: str, stream: str, tmp_path: Path) -> None:
    bus = open_bus("redis", data_dir=tmp_path, url=redis_url, consumer="worker-1", stream=stream)
    try:
        assert isinstance(bus, RedisEventBus)
        assert bus.consumer == "worker-1"
        assert bus.dead_letter_stream == f"{stream}:dead"
        await bus.ping()
    finally:
        await bus.close()
    with pytest.raises(ValueError, match="needs url="):
        open_bus("redis", data_dir=tmp_path)
    with pytest.raises(ValueError, match="poll_block_ms must be positive"):
        RedisEventBus(redis_url, poll_block_ms=0)


async def test_publish_trims_the_stream_to_about_maxlen(
    redis_url: str, stream: str, inspect: aioredis.Redis
) -> None:
    bus = RedisEventBus(redis_url, stream=stream, maxlen=50, **FAST)  # type: ignore[arg-type]
    try:
        for n in range(600):
            await bus.publish("a", {"n": n}, source="/t")
    finally:
        await bus.close()
    # Approximate trimming drops whole radix-tree nodes (100 entries by default).
    assert 50 <= await inspect.xlen(stream) <= 200
    _, newest = (await stream_entries(inspect, stream))[-1]
    assert orjson.loads(newest["envelope"])["data"] == {"n": 599}


async def test_entries_are_readable_and_groups_are_consumer_groups(
    redis_url: str, stream: str, inspect: aioredis.Redis
) -> None:
    got: list[Event] = []
    bus = RedisEventBus(redis_url, stream=stream, **FAST)  # type: ignore[arg-type]
    bus.subscribe("stats", {"a": collector(got)})
    try:
        await bus.start()
        sent = await bus.publish("a", {"n": 1}, source="/t", request_id="r1")
        await wait_until(lambda: got == [sent])
        [(_, fields)] = await stream_entries(inspect, stream)
        assert fields["type"] == "a"
        assert fields["id"] == sent.id
        assert Event.from_dict(orjson.loads(fields["envelope"])) == sent
        [group] = await inspect.xinfo_groups(stream)
        assert group["name"] == "stats"
        assert group["pending"] == 0
    finally:
        await bus.close()


async def test_a_malformed_entry_goes_to_dead_letters_without_blocking(
    redis_url: str, stream: str, inspect: aioredis.Redis
) -> None:
    metrics = RecordingMetrics()
    got: list[Event] = []
    bus = RedisEventBus(redis_url, stream=stream, metrics=metrics, **FAST)  # type: ignore[arg-type]
    bus.subscribe("g", {"a": collector(got)})
    try:
        await inspect.xadd(stream, {"type": "a", "envelope": "{not json"})
        await bus.start()
        sent = await bus.publish("a", {}, source="/t")
        await wait_until(lambda: got == [sent])
        [(_, dead)] = await stream_entries(inspect, bus.dead_letter_stream)
        assert dead["group"] == "g"
        assert dead["envelope"] == "{not json"
        assert ("g", "a", "dead") in metrics.outcomes
    finally:
        await bus.close()


async def test_a_deleted_stream_and_group_are_recreated(
    redis_url: str, stream: str, inspect: aioredis.Redis
) -> None:
    got: list[Event] = []
    bus = RedisEventBus(redis_url, stream=stream, **FAST)  # type: ignore[arg-type]
    bus.subscribe("g", {"a": collector(got)})
    try:
        await bus.start()
        await inspect.delete(stream)  # as after a Redis restart without persistence
        sent = await bus.publish("a", {}, source="/t")
        await wait_until(lambda: got == [sent])
    finally:
        await bus.close()


async def test_redis_outage_is_survived(private_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    got: list[Event] = []
    bus = RedisEventBus(private_redis.url, **FAST)  # type: ignore[arg-type]
    bus.subscribe("g", {"a": collector(got)})
    try:
        await bus.start()
        first = await bus.publish("a", {"n": 1}, source="/t")
        await wait_until(lambda: got == [first])
        with caplog.at_level(logging.WARNING, logger="fittracker.bus"):
            private_redis.stop()
            with pytest.raises(redis.exceptions.ConnectionError):
                await bus.ping()
            with pytest.raises(redis.exceptions.ConnectionError):
                await bus.publish("a", {"n": 2}, source="/t")
            await wait_until(lambda: "Redis is unreachable" in caplog.text)
            private_redis.start()  # empty: no persistence, so the group is recreated
            await bus.ping()
            again = await bus.publish("a", {"n": 3}, source="/t")
            await wait_until(lambda: got == [first, again], within=5)
        unreachable = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
        assert len(unreachable) == 1  # logged once per outage, not per retry
    finally:
        await bus.close()


async def test_an_outage_keeps_events_in_the_outbox_until_redis_returns(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Event] = []
    outbox = Outbox(tmp_path)
    bus = RedisEventBus(private_redis.url, outbox=outbox, **FAST)  # type: ignore[arg-type]
    bus.subscribe("g", {"a": collector(got)})
    try:
        await bus.start()
        first = await bus.publish("a", {"n": 1}, source="/t", subject="u")
        await wait_until(lambda: got == [first])
        with caplog.at_level(logging.WARNING, logger="fittracker.bus"):
            private_redis.stop()
            # Publishing neither fails nor loses anything: the events wait on local disk.
            kept = [await bus.publish("a", {"n": n}, source="/t", subject="u") for n in (2, 3, 4)]
            assert await outbox.size() == 3
            private_redis.start()  # empty: the group is recreated, the stream refilled from the outbox
            late = await bus.publish("a", {"n": 5}, source="/t", subject="u")  # queues behind them
            await wait_until(lambda: len(got) == 5, within=10)
        assert [e.id for e in got] == [e.id for e in [first, *kept, late]]
        assert await outbox.size() == 0
        assert "Redis is unreachable" in caplog.text
        after = await bus.publish("a", {"n": 6}, source="/t", subject="u")  # straight to Redis again
        await wait_until(lambda: got[-1:] == [after])
        assert await outbox.size() == 0
    finally:
        await bus.close()


async def test_what_a_dead_process_left_in_the_outbox_is_forwarded(
    redis_url: str, stream: str, tmp_path: Path
) -> None:
    left = Event(type="a", source="/t", data={"n": 1})
    dead = Outbox(tmp_path)  # a process that died during an outage, its event kept
    await dead.put(left)
    await dead.close()
    got: list[Event] = []
    bus = open_bus("redis", data_dir=tmp_path, url=redis_url, stream=stream, **FAST)  # type: ignore[arg-type]
    bus.subscribe("g", {"a": collector(got)})
    try:
        await bus.start()
        await wait_until(lambda: [e.id for e in got] == [left.id])
    finally:
        await bus.close()
    check = Outbox(tmp_path)
    try:
        assert await check.size() == 0
    finally:
        await check.close()
