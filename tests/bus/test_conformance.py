"""The event-bus contract, run against every backend (SQLite file, real redis-server).

Two buses on one backend stand in for two processes. Backend internals (pending entries,
dead letters, a consumer that claims and dies) are reached through the harness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fittracker.bus import Event

from .harness import BusHarness, MakeBus
from .helpers import RecordingMetrics, collector, eventually, wait_until


async def test_round_trip_keeps_the_envelope(make_bus: MakeBus, bus_harness: BusHarness) -> None:
    metrics = RecordingMetrics()
    bus = make_bus(metrics=metrics)
    got: list[Event] = []
    bus.subscribe("stats", {"workout.logged": collector(got)})
    await bus.start()
    sent = await bus.publish(
        "workout.logged",
        {"workout_id": "w1", "sets": [{"reps": 5, "kg": 80.5}], "note": "héllo"},
        source="/plugins/workouts",
        subject="users/u1",
        request_id="req-123",
    )
    await wait_until(lambda: len(got) == 1)
    assert got == [sent]
    assert got[0].to_dict() == {
        "specversion": "1.0",
        "id": sent.id,
        "source": "/plugins/workouts",
        "type": "workout.logged",
        "time": sent.time,
        "subject": "users/u1",
        "data": {"workout_id": "w1", "sets": [{"reps": 5, "kg": 80.5}], "note": "héllo"},
        "request_id": "req-123",
    }
    await wait_until(lambda: metrics.outcomes == [("stats", "workout.logged", "ok")])
    assert metrics.published_types == ["workout.logged"]
    await bus.ping()


async def test_only_subscribed_types_are_delivered(make_bus: MakeBus, bus_harness: BusHarness) -> None:
    bus = make_bus()
    got: list[Event] = []
    bus.subscribe("g", {"a": collector(got)})
    await bus.start()
    for kind in ("b", "a", "c", "a", "b"):
        await bus.publish(kind, {}, source="/t")
    await wait_until(lambda: len(got) == 2)
    await asyncio.sleep(0.1)
    assert [e.type for e in got] == ["a", "a"]

    async def nothing_pending() -> bool:  # unsubscribed types are not left unacknowledged
        return await bus_harness.pending("g") == []

    await eventually(nothing_pending)


async def test_every_group_receives_every_event(make_bus: MakeBus) -> None:
    bus = make_bus()
    first: list[Event] = []
    second: list[Event] = []
    bus.subscribe("one", {"a": collector(first)})
    bus.subscribe("two", {"a": collector(second)})
    await bus.start()
    sent = [await bus.publish("a", {"n": n}, source="/t") for n in range(10)]
    await wait_until(lambda: len(first) == 10 and len(second) == 10)
    assert first == sent
    assert second == sent


async def test_consumers_of_one_group_split_the_events(make_bus: MakeBus, bus_harness: BusHarness) -> None:
    handled: dict[str, list[str]] = {"p1": [], "p2": []}

    def handler_for(name: str) -> Callable[[Event], Any]:
        async def handle(event: Event) -> None:
            await asyncio.sleep(0.001)
            handled[name].append(event.id)

        return handle

    one = make_bus(consumer="p1", batch_size=5)
    two = make_bus(consumer="p2", batch_size=5)
    sent = {(await one.publish("a", {"n": n}, source="/t")).id for n in range(200)}
    one.subscribe("g", {"a": handler_for("p1")})
    two.subscribe("g", {"a": handler_for("p2")})
    await asyncio.gather(one.start(), two.start())
    await wait_until(lambda: len(handled["p1"]) + len(handled["p2"]) >= 200, within=10)
    await asyncio.sleep(0.1)
    all_ids = handled["p1"] + handled["p2"]
    assert len(all_ids) == 200  # no duplicates
    assert set(all_ids) == sent
    assert handled["p1"]
    assert handled["p2"]
    assert await bus_harness.pending("g") == []


async def test_events_are_handled_in_log_order(make_bus: MakeBus) -> None:
    bus = make_bus(batch_size=7)
    got: list[Event] = []
    bus.subscribe("g", {"a": collector(got), "b": collector(got)})
    for n in range(50):
        await bus.publish("ab"[n % 2], {"n": n}, source="/t")
    await bus.start()
    for n in range(50, 60):
        await bus.publish("a", {"n": n}, source="/t")
    await wait_until(lambda: len(got) == 60)
    assert [e.data["n"] for e in got] == list(range(60))


async def test_failed_handler_is_retried_until_it_succeeds(
    make_bus: MakeBus, bus_harness: BusHarness, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = RecordingMetrics()
    bus = make_bus(metrics=metrics, visibility_timeout=0.1)
    attempts: list[Event] = []

    async def flaky(event: Event) -> None:
        attempts.append(event)
        if len(attempts) < 3:
            raise RuntimeError("downstream unavailable")

    bus.subscribe("g", {"a": flaky})
    with caplog.at_level(logging.ERROR, logger="fittracker.bus"):
        await bus.start()
        sent = await bus.publish("a", {}, source="/t")
        await wait_until(lambda: ("g", "a", "ok") in metrics.outcomes)
    assert attempts == [sent, sent, sent]
    assert metrics.outcomes == [("g", "a", "error"), ("g", "a", "error"), ("g", "a", "ok")]
    assert await bus_harness.pending("g") == []
    failures = [r for r in caplog.records if r.name == "fittracker.bus" and r.exc_info]
    assert len(failures) == 2
    assert "downstream unavailable" in caplog.text


async def test_poison_event_goes_to_dead_letters(make_bus: MakeBus, bus_harness: BusHarness) -> None:
    metrics = RecordingMetrics()
    bus = make_bus(metrics=metrics, visibility_timeout=0.05, max_deliveries=3)
    attempts: list[str] = []
    good: list[Event] = []

    async def handle(event: Event) -> None:
        if event.data.get("poison"):
            attempts.append(event.id)
            raise ValueError("cannot parse")
        good.append(event)

    bus.subscribe("g", {"a": handle})
    await bus.start()
    poison = await bus.publish("a", {"poison": True}, source="/t")
    after = await bus.publish("a", {}, source="/t")
    await wait_until(lambda: ("g", "a", "dead") in metrics.outcomes)
    assert attempts == [poison.id] * 3
    assert good == [after]  # a poison event does not block the ones behind it
    assert await bus_harness.dead_letters("g") == [(poison.id, 3)]
    assert await bus_harness.pending("g") == []


async def test_claims_of_a_dead_consumer_are_reclaimed_after_the_timeout(
    make_bus: MakeBus, bus_harness: BusHarness
) -> None:
    publisher = make_bus()
    sent = await publisher.publish("a", {}, source="/t")
    # A consumer that claimed the event, then died without acknowledging it.
    assert await bus_harness.ghost_claim("g", "a") == [sent.id]
    claimed_at = time.monotonic()

    got: list[Event] = []
    bus = make_bus(visibility_timeout=0.3)
    bus.subscribe("g", {"a": collector(got)})
    await bus.start()
    await wait_until(lambda: got == [sent])
    assert time.monotonic() - claimed_at >= 0.29
    await asyncio.sleep(0.1)
    assert got == [sent]
    assert await bus_harness.pending("g") == []


async def test_a_restarted_worker_resumes_where_its_group_left_off(make_bus: MakeBus) -> None:
    first_run: list[Event] = []
    bus = make_bus()
    bus.subscribe("g", {"a": collector(first_run)})
    await bus.start()
    for n in range(3):
        await bus.publish("a", {"n": n}, source="/t")
    await wait_until(lambda: len(first_run) == 3)
    await bus.close()

    # Published while the worker was down: nothing is lost, nothing acked comes back.
    publisher = make_bus()
    missed = [await publisher.publish("a", {"n": n}, source="/t") for n in (3, 4)]
    second_run: list[Event] = []
    restarted = make_bus()
    restarted.subscribe("g", {"a": collector(second_run)})
    await restarted.start()
    fresh = await restarted.publish("a", {"n": 5}, source="/t")
    await wait_until(lambda: len(second_run) == 3)
    await asyncio.sleep(0.1)
    assert second_run == [*missed, fresh]


async def test_tail_replays_from_since_then_follows_live_events(make_bus: MakeBus) -> None:
    reader = make_bus()
    writer = make_bus()  # another "process"
    await writer.publish("a", {"n": "too old"}, source="/t")
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    old = await writer.publish("a", {"n": 1}, source="/t")
    await writer.publish("b", {"n": "unwanted"}, source="/t")
    stream = reader.tail({"a"}, since - timedelta(milliseconds=5))
    try:
        assert await asyncio.wait_for(anext(stream), 2) == old
        live_local = await reader.publish("a", {"n": 2}, source="/t")
        assert await asyncio.wait_for(anext(stream), 2) == live_local
        live_remote = await writer.publish("a", {"n": 3}, source="/t")
        assert await asyncio.wait_for(anext(stream), 2) == live_remote
    finally:
        await stream.aclose()


async def test_tail_ends_when_the_bus_closes(make_bus: MakeBus) -> None:
    bus = make_bus()
    seen: list[Event] = []

    async def follow() -> None:
        async for event in bus.tail({"a"}, datetime.now(UTC)):
            seen.append(event)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    await bus.close()
    await asyncio.wait_for(task, 2)
    assert seen == []


async def test_close_lets_the_in_flight_handler_finish(make_bus: MakeBus) -> None:
    started = asyncio.Event()
    finished: list[Event] = []

    async def slow(event: Event) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(event)

    bus = make_bus()
    bus.subscribe("g", {"a": slow})
    # One subject: one lane, handled in order, so the second is not in flight yet.
    first = await bus.publish("a", {}, source="/t", subject="w1")
    second = await bus.publish("a", {}, source="/t", subject="w1")
    await bus.start()
    await asyncio.wait_for(started.wait(), 2)
    await bus.close()
    assert finished == [first]

    # The unhandled rest of the batch was released: the next consumer takes it at once.
    got: list[Event] = []
    successor = make_bus(visibility_timeout=30)
    successor.subscribe("g", {"a": collector(got)})
    await successor.start()
    await wait_until(lambda: got == [second], within=2)


async def test_a_batch_runs_one_lane_per_subject(make_bus: MakeBus) -> None:
    """Different subjects are handled side by side; one subject's events strictly in order."""
    running: set[str] = set()
    overlapped: list[tuple[str, str]] = []
    order: dict[str, list[int]] = {}

    async def handler(event: Event) -> None:
        subject = event.subject or ""
        overlapped.extend((subject, other) for other in running)
        assert subject not in running, "two events of one subject at once"
        running.add(subject)
        await asyncio.sleep(0.02)
        order.setdefault(subject, []).append(event.data["n"])
        running.discard(subject)

    bus = make_bus()
    bus.subscribe("g", {"a": handler})
    for n in range(6):
        for subject in ("w1", "w2", "w3"):
            await bus.publish("a", {"n": n}, source="/t", subject=subject)
    await bus.start()
    try:
        await wait_until(lambda: sum(map(len, order.values())) == 18, within=5)
    finally:
        await bus.close()
    assert order == {s: list(range(6)) for s in ("w1", "w2", "w3")}
    assert overlapped, "the subjects' lanes never ran side by side"


async def test_close_cancels_a_handler_that_overruns_close_timeout(
    make_bus: MakeBus, bus_harness: BusHarness
) -> None:
    started = asyncio.Event()

    async def stuck(event: Event) -> None:
        started.set()
        await asyncio.sleep(60)

    bus = make_bus(close_timeout=0.1)
    bus.subscribe("g", {"a": stuck})
    await bus.start()
    await bus.publish("a", {}, source="/t")
    await asyncio.wait_for(started.wait(), 2)
    began = time.monotonic()
    await bus.close()
    assert time.monotonic() - began < 1
    assert await bus_harness.pending("g") == [1]  # left for a retry


async def test_subscribe_rules(make_bus: MakeBus) -> None:
    bus = make_bus()
    with pytest.raises(ValueError, match="no handlers"):
        bus.subscribe("g", {})
    bus.subscribe("g", {"a": collector([])})
    with pytest.raises(ValueError, match="already subscribed"):
        bus.subscribe("g", {"b": collector([])})
    await bus.start()
    with pytest.raises(RuntimeError, match="before start"):
        bus.subscribe("h", {"a": collector([])})
