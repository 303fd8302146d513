"""The scaled event bus: one Redis stream shared by every process on every host.

``publish`` appends with ``XADD`` and approximate ``MAXLEN`` trimming, and returns once Redis
acknowledged the entry (surviving a *Redis* crash needs ``appendonly yes`` on the server).
Each subscribed group is a Redis consumer group and each bus instance one consumer in it,
so Redis keeps the offsets and the pending entries; the semantics match the SQLite backend:

- a consumer reads new entries with ``XREADGROUP >`` (blocking up to ``poll_block_ms``),
  handles them in stream order and ``XACK``s each one whose handler returned. Entries of
  types the group has no handler for are acknowledged at once, unhandled.
- An entry left unacknowledged (the handler raised, or the process died) is taken over by
  any consumer of the group with ``XAUTOCLAIM`` once it was idle for ``visibility_timeout``.
- An entry whose ``XPENDING`` delivery count shows it already failed ``max_deliveries``
  times is copied to the dead-letter stream ``<stream>:dead`` and acknowledged. So is an
  entry that is not a valid envelope, at once.

A *new* group is created at id ``0``, not ``$``: events published before the group's first
start (say, by a plug-in whose process came up earlier) are handled, as with SQLite. The
price is that a group added to a long-lived stream first works through the retained
history. A restarted worker resumes at its group's last delivered id, so nothing published
while it was down is lost; what its previous incarnation held unacknowledged is reclaimed
after the visibility timeout.

While Redis is unreachable, ``publish`` does not fail: given an
:class:`~fittracker.bus.outbox.Outbox`, the event is kept on local disk, and events published
after it queue behind it, until the forwarder has moved them all to the stream.

The Redis commands themselves live in :mod:`fittracker.bus.redis_stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import AsyncGenerator, Collection, Mapping
from datetime import datetime
from typing import Any

import redis.exceptions

from fittracker.bus.base import BusMetrics, Event, Handler, in_subject_lanes, require_positive, run_handler
from fittracker.bus.outbox import Outbox
from fittracker.bus.redis_stream import Delivery, RedisStream, decode, id_before
from fittracker.ids import random_hex
from fittracker.redis_support import REDIS_DOWN, Outage, redis_client

log = logging.getLogger("fittracker.bus")

# After a failure a consumer (or tail) waits this long before trying Redis again.
_ERROR_BACKOFF = 1.0
# How often an idle forwarder looks for entries a process that died mid-outage left behind.
_OUTBOX_CHECK_S = 10.0


class RedisEventBus:
    """:class:`~fittracker.bus.base.EventBus` on Redis Streams (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        metrics: BusMetrics | None = None,
        consumer: str | None = None,
        stream: str = "fittracker:events",
        maxlen: int = 1_000_000,
        poll_block_ms: int = 1000,
        visibility_timeout: float = 30.0,
        max_deliveries: int = 10,
        batch_size: int = 100,
        close_timeout: float = 10.0,
        outbox: Outbox | None = None,
    ) -> None:
        require_positive(
            maxlen=maxlen,
            poll_block_ms=poll_block_ms,
            visibility_timeout=visibility_timeout,
            max_deliveries=max_deliveries,
            batch_size=batch_size,
        )
        self._metrics = metrics
        # Unique per instance: two buses in one process must not share pending entries.
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{random_hex()[:8]}"
        # No socket timeout: XREADGROUP/XREAD legitimately block for up to poll_block_ms.
        self._redis = redis_client(url, decode_responses=True)
        self._stream = RedisStream(
            self._redis,
            stream,
            consumer=self.consumer,
            maxlen=maxlen,
            batch_size=batch_size,
            idle_ms=max(1, int(visibility_timeout * 1000)),
        )
        self._block_ms = int(poll_block_ms)
        self._visibility_timeout = visibility_timeout
        self._max_deliveries = max_deliveries
        self._close_timeout = close_timeout
        self._groups: dict[str, dict[str, Handler]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closing = False
        self._stop = asyncio.Event()
        self._close_done = asyncio.Event()
        self._outbox = outbox
        self._forward_batch = batch_size
        self._holding = False  # this process has events in the outbox: new ones queue behind
        self._forward_now = asyncio.Event()
        self._publish_outage = Outage(f"event bus publish to {stream}", log, retry_interval=_ERROR_BACKOFF)

    @property
    def stream(self) -> str:
        return self._stream.name

    @property
    def dead_letter_stream(self) -> str:
        return self._stream.dead_letters

    # -- the EventBus port -------------------------------------------------------------

    async def publish(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        source: str,
        subject: str | None = None,
        request_id: str | None = None,
    ) -> Event:
        event = Event(type=type, source=source, data=dict(data), subject=subject, request_id=request_id)
        if self._outbox is None:
            await self._stream.append(event)
        elif self._holding:
            await self._keep(event)
        else:
            try:
                await self._stream.append(event)
            except REDIS_DOWN as exc:
                self._publish_outage.failed(exc)
                self._holding = True
                await self._keep(event)
        if self._metrics is not None:
            self._metrics.published(type)
        return event

    async def _keep(self, event: Event) -> None:
        assert self._outbox is not None
        await self._outbox.put(event)
        self._forward_now.set()  # also after a forwarder that just found the outbox empty

    def subscribe(self, group: str, handlers: Mapping[str, Handler]) -> None:
        if self._started:
            raise RuntimeError("subscribe() must be called before start()")
        if group in self._groups:
            raise ValueError(f"consumer group {group!r} is already subscribed on this bus")
        if not handlers:
            raise ValueError(f"consumer group {group!r} has no handlers")
        self._groups[group] = dict(handlers)

    async def tail(self, types: Collection[str], since: datetime) -> AsyncGenerator[Event, None]:
        """Broadcast read (no group, no ack); ends when the bus closes. ``aclose()`` it when done.

        History comes from ``XRANGE`` starting at the stream id of ``since`` (ids are the
        Redis server's millisecond clock), live events from ``XREAD BLOCK``. A Redis outage
        pauses the tail; it resumes after the last entry it yielded.
        """
        wanted = frozenset(types)
        after = id_before(since)  # exclusive lower bound
        block_ms: int | None = None  # None: still reading history
        outage = Outage(f"event bus tail of {self.stream}", log, retry_interval=_ERROR_BACKOFF)
        while not self._closing:
            try:
                entries = await self._stream.read_after(after, block_ms)
                outage.recovered()
            except REDIS_DOWN as exc:
                if self._stop.is_set():  # the client was closed under us
                    return
                outage.failed(exc)
                await self._pause(_ERROR_BACKOFF)
                continue
            if block_ms is None and not entries:
                block_ms = self._block_ms  # caught up: wait for live events from now on
            for entry_id, fields in entries:
                after = entry_id
                event = decode(fields)
                if event is not None and event.type in wanted:
                    yield event

    async def start(self) -> None:
        """Create the consumer groups (fails if Redis is unreachable), then consume."""
        if self._started:
            return
        self._started = True
        for group in self._groups:
            await self._stream.create_group(group)
        for group, handlers in self._groups.items():
            task = asyncio.create_task(self._consume(group, handlers), name=f"fittracker-bus:{group}")
            self._tasks.append(task)
        if self._outbox is not None:
            self._forward_now.set()  # whatever an earlier process left behind goes first
            self._tasks.append(asyncio.create_task(self._forward(self._outbox), name="fittracker-bus:outbox"))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        """Let in-flight handlers finish (up to ``close_timeout``), then disconnect.

        An idle consumer notices the close when its blocking read returns, so closing takes
        up to ``poll_block_ms`` longer; the read is not cancelled because entries Redis
        handed over mid-cancel would sit unacknowledged until the visibility timeout.
        """
        if self._closing:  # a second caller waits for the first one to finish
            await self._close_done.wait()
            return
        self._closing = True
        self._stop.set()
        self._forward_now.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self._close_timeout)
            for task in late:
                log.warning(
                    "event bus: %s still busy after %ss; cancelling it", task.get_name(), self._close_timeout
                )
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._outbox is not None:
            await self._outbox.close()
        await self._redis.aclose()
        self._close_done.set()

    # -- forwarding what waited out an outage ----------------------------------------------

    async def _forward(self, outbox: Outbox) -> None:
        """Move the outbox's entries to the stream whenever there are any (see the module)."""
        outage = Outage(f"event bus outbox for {self.stream}", log, retry_interval=_ERROR_BACKOFF)
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_OUTBOX_CHECK_S):
                    await self._forward_now.wait()
            self._forward_now.clear()
            try:
                await self._drain(outbox)
                outage.recovered()
                self._publish_outage.recovered()
            except REDIS_DOWN as exc:
                outage.failed(exc)
                await self._pause(_ERROR_BACKOFF)
                self._forward_now.set()
            except Exception:
                log.exception("event bus: forwarding the outbox failed; retrying")
                await self._pause(_ERROR_BACKOFF)
                self._forward_now.set()

    async def _drain(self, outbox: Outbox) -> None:
        while not self._closing:
            batch = await outbox.lease(self._forward_batch)
            if not batch:
                if await outbox.size() == 0:
                    self._holding = False
                else:  # another process is forwarding: look again shortly
                    await self._pause(_ERROR_BACKOFF)
                    self._forward_now.set()
                return
            sent: list[int] = []
            try:
                for seq, event in batch:
                    await self._stream.append(event)
                    sent.append(seq)
            finally:
                if sent:
                    await outbox.forwarded(sent)
                if len(sent) < len(batch):
                    await outbox.release([seq for seq, _ in batch[len(sent) :]])
            log.debug("event bus: forwarded %d events kept during a Redis outage", len(sent))

    # -- consuming ---------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    async def _consume(self, group: str, handlers: Mapping[str, Handler]) -> None:
        # Look for stale entries a few times per timeout; a failed event waits at most
        # visibility_timeout * 1.25 for its retry.
        reclaim_every = max(self._block_ms / 1000, self._visibility_timeout / 4)
        next_reclaim = 0.0  # on start, take over what a dead consumer left behind
        cursor = "0-0"
        outage = Outage(f"event bus group {group!r}", log, retry_interval=_ERROR_BACKOFF)
        while not self._closing:
            try:
                batch: list[Delivery] = []
                if time.monotonic() >= next_reclaim:
                    batch, cursor = await self._reclaim(group, cursor)
                    if cursor == "0-0":  # the scan of the pending list is complete
                        next_reclaim = time.monotonic() + reclaim_every
                if not batch:
                    wait_ms = int((next_reclaim - time.monotonic()) * 1000)
                    batch = await self._stream.read_new(group, max(1, min(self._block_ms, wait_ms)))
                outage.recovered()
                if batch:
                    await self._deliver(group, handlers, batch)
            except redis.exceptions.ResponseError as exc:
                # The stream or group vanished (deleted, or Redis restarted without persistence):
                # NOGROUP, or UNBLOCKED when the key is deleted under a blocked XREADGROUP.
                if str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    log.warning("event bus: group %r is missing on %s; recreating it", group, self.stream)
                    with contextlib.suppress(*REDIS_DOWN):
                        await self._stream.create_group(group)
                else:
                    log.exception("event bus: consumer for group %r failed; retrying", group)
                    await self._pause(_ERROR_BACKOFF)
            except REDIS_DOWN as exc:
                if self._stop.is_set():  # the client was closed under us
                    return
                outage.failed(exc)  # unacked entries stay pending and are retried
                await self._pause(_ERROR_BACKOFF)
            except Exception:
                # Never let the consumer die over one bad batch.
                log.exception("event bus: consumer for group %r failed; retrying", group)
                await self._pause(_ERROR_BACKOFF)

    async def _reclaim(self, group: str, cursor: str) -> tuple[list[Delivery], str]:
        """Take over stale entries; bury those already delivered ``max_deliveries`` times."""
        claimed, vanished, cursor = await self._stream.reclaim(group, cursor)
        if vanished:
            log.warning(
                "event bus: %d pending entries of group %r were trimmed before being handled", vanished, group
            )
        batch: list[Delivery] = []
        for item in claimed:
            if item.deliveries > self._max_deliveries:  # this claim counted one more delivery
                await self._bury(group, item, item.deliveries - 1)
            else:
                batch.append(item)
        return batch, cursor

    async def _deliver(self, group: str, handlers: Mapping[str, Handler], batch: list[Delivery]) -> None:
        wanted = [item for item in batch if item.event is None or item.event.type in handlers]
        if len(wanted) < len(batch):  # acknowledge unsubscribed types at once: never seen again
            keep = {item.entry_id for item in wanted}
            await self._stream.ack(group, *(item.entry_id for item in batch if item.entry_id not in keep))
        await in_subject_lanes(
            wanted,
            lambda item: (item.event.subject or item.event.id) if item.event is not None else item.entry_id,
            functools.partial(self._deliver_lane, group, handlers),
        )

    async def _deliver_lane(self, group: str, handlers: Mapping[str, Handler], lane: list[Delivery]) -> None:
        for index, item in enumerate(lane):
            event = item.event
            if event is None:
                await self._bury(group, item, item.deliveries)
                continue
            if self._closing:
                await self._stream.release(group, [i for i in lane[index:] if i.event is not None])
                return
            if not await self._still_ours(group, item):
                continue
            handler = handlers[event.type]
            if not await run_handler(handler, event, group, item.deliveries, self._max_deliveries):
                self._handled(group, event.type, "error")
                continue
            await self._stream.ack(group, item.entry_id)
            self._handled(group, event.type, "ok")

    async def _still_ours(self, group: str, item: Delivery) -> bool:
        """Skip entries acked or taken over by another consumer since we claimed them.

        Nobody can take an entry over before it was idle for the visibility timeout, and its
        idle time is at most our time since ``claimed_at``: a fresh entry needs no round trip.
        """
        if time.monotonic() - item.claimed_at < self._visibility_timeout / 2:
            return True
        return await self._stream.owner(group, item.entry_id) == self.consumer

    async def _bury(self, group: str, item: Delivery, deliveries: int) -> None:
        await self._stream.bury(group, item, deliveries)
        event_type, event_id = item.fields.get("type", "unknown"), item.fields.get("id", "")
        log.error(
            "event bus: group %r gave up on %s %s (entry %s) after %d deliveries; moved to %s",
            group,
            event_type,
            event_id,
            item.entry_id,
            deliveries,
            self.dead_letter_stream,
            extra={"event_id": event_id, "request_id": item.event.request_id if item.event else None},
        )
        self._handled(group, event_type, "dead")

    def _handled(self, group: str, event_type: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.handled(group, event_type, outcome)
