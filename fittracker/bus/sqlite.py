"""The embedded event bus: a durable SQLite log shared by every process on the host.

One file, ``data_dir / "events.db"``, in WAL mode. Each :class:`SqliteEventBus` (one per
process, or several in one process for tests) keeps its own connection on a dedicated
single-thread executor, so blocking SQLite calls never run on the event loop.

Delivery follows Redis Streams (see :mod:`fittracker.bus.sqlite_log`): a consumer claims a
batch of new events for its group, handles them in log order, and acknowledges each one
whose handler returned. A handler that raises leaves its entry pending; any consumer of the
group takes it over once the claim is older than ``visibility_timeout`` (also how entries
of a dead process are recovered), until ``max_deliveries`` sends it to ``dead_letters``.

Wake-ups: a publish wakes the consumers and tails of its own process at once; other
processes notice new events by polling ``MAX(seq)`` every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import AsyncGenerator, Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from fittracker.bus.base import BusMetrics, Event, Handler, in_subject_lanes, require_positive, run_handler
from fittracker.bus.sqlite_log import Delivery, SqliteLog, types_param
from fittracker.ids import random_hex
from fittracker.sqlite_thread import SqliteThread

log = logging.getLogger("fittracker.bus")

_P = ParamSpec("_P")
_T = TypeVar("_T")

# After an unexpected storage error a consumer waits this long before trying again.
_ERROR_BACKOFF = 1.0


class BusClosedError(RuntimeError):
    """The bus was closed; no more storage calls are possible."""


class SqliteEventBus:
    """:class:`~fittracker.bus.base.EventBus` on a SQLite file (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        metrics: BusMetrics | None = None,
        consumer: str | None = None,
        poll_interval: float = 0.05,
        visibility_timeout: float = 30.0,
        max_deliveries: int = 10,
        batch_size: int = 100,
        close_timeout: float = 10.0,
        busy_timeout: float = 5.0,
    ) -> None:
        require_positive(
            poll_interval=poll_interval,
            visibility_timeout=visibility_timeout,
            max_deliveries=max_deliveries,
            batch_size=batch_size,
            busy_timeout=busy_timeout,
        )
        self._log = SqliteLog(Path(data_dir) / "events.db", busy_timeout=busy_timeout)
        self._metrics = metrics
        # Unique per instance: two buses in one process must not share pending entries.
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{random_hex()[:8]}"
        self._poll_interval = poll_interval
        self._visibility_timeout = visibility_timeout
        self._max_deliveries = max_deliveries
        self._batch_size = batch_size
        self._close_timeout = close_timeout
        # One thread owns the connection; concurrent publishes and acks share a commit.
        self._thread = SqliteThread("fittracker-bus", self._log.connection)
        self._groups: dict[str, dict[str, Handler]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._poller: asyncio.Task[None] | None = None
        # Local waiters (tails, consumer groups) and the event types each wants: a publish wakes
        # only those that want its type; the poller (other processes' events) and close wake all.
        self._listeners: dict[asyncio.Event, frozenset[str]] = {}
        self._started = False
        self._closing = False
        self._closed = False
        self._close_done = asyncio.Event()

    @property
    def path(self) -> Path:
        """The SQLite file holding the log."""
        return self._log.path

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
        await self._run_write(self._log.append, event)
        if self._metrics is not None:
            self._metrics.published(type)
        self._wake(type)
        return event

    def subscribe(self, group: str, handlers: Mapping[str, Handler]) -> None:
        if self._started:
            raise RuntimeError("subscribe() must be called before start()")
        if group in self._groups:
            raise ValueError(f"consumer group {group!r} is already subscribed on this bus")
        if not handlers:
            raise ValueError(f"consumer group {group!r} has no handlers")
        self._groups[group] = dict(handlers)

    async def tail(self, types: Collection[str], since: datetime) -> AsyncGenerator[Event, None]:
        """Broadcast read (no group, no ack); ends when the bus closes. ``aclose()`` it when done."""
        wanted = types_param(list(types))
        since_ts = since.timestamp()
        after = 0
        self._ensure_poller()
        kinds = frozenset(types)
        while not self._closing:
            signal = self._listen(kinds)  # before reading, so a publish in between is not missed
            try:
                rows = await self._run(self._log.read_after, after, wanted, since_ts, self._batch_size)
            except BusClosedError:
                self._listeners.pop(signal, None)
                return
            if not rows:
                await self._wait(signal, None)
                continue
            self._listeners.pop(signal, None)
            for seq, event in rows:
                after = seq
                yield event

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._run(self._log.ping)  # open the file now, so a bad data_dir fails start()
        for group, handlers in self._groups.items():
            task = asyncio.create_task(self._consume(group, handlers), name=f"fittracker-bus:{group}")
            self._tasks.append(task)
        self._ensure_poller()

    async def ping(self) -> None:
        await self._run(self._log.ping)

    async def close(self) -> None:
        if self._closing:  # a second caller waits for the first one to finish
            await self._close_done.wait()
            return
        self._closing = True
        self._wake()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self._close_timeout)
            for task in late:
                log.warning(
                    "event bus: %s still busy after %ss; cancelling it", task.get_name(), self._close_timeout
                )
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        self._closed = True
        await self._thread.shutdown(self._log.close)
        self._close_done.set()

    # -- retention ---------------------------------------------------------------------

    async def trim(self, older_than: datetime) -> int:
        """Delete events stored before ``older_than`` that every group has acknowledged.

        Returns how many were deleted. With no consumer group at all, every old event counts
        as acknowledged. Dead letters keep their own copy of the envelope.
        """
        return await self._run(self._log.trim, older_than.timestamp())

    # -- internals ---------------------------------------------------------------------

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._closed:
            raise BusClosedError("the event bus is closed")
        return await self._thread.run(functools.partial(fn, *args, **kwargs))

    async def _run_point(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Like ``_run`` for a one-row read by key: on the event loop when the thread is idle."""
        if self._closed:
            raise BusClosedError("the event bus is closed")
        return await self._thread.run(functools.partial(fn, *args, **kwargs), inline=True)

    async def _run_write(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Like ``_run`` for a one-row write (an append, an ack): it runs on the event loop when
        the bus's thread is idle, else shares a commit with the other writes queued there."""
        if self._closed:
            raise BusClosedError("the event bus is closed")
        return await self._thread.run(functools.partial(fn, *args, **kwargs), write=True, inline=True)

    def _listen(self, types: frozenset[str]) -> asyncio.Event:
        """A fresh Event, set by the next publish of one of ``types`` (or any wake-all)."""
        signal = asyncio.Event()
        self._listeners[signal] = types
        return signal

    def _wake(self, event_type: str | None = None) -> None:
        """Wake the local waiters that want ``event_type`` (None: all of them); each re-reads the log."""
        for signal, types in list(self._listeners.items()):
            if event_type is None or not types or event_type in types:
                del self._listeners[signal]
                signal.set()

    async def _wait(self, signal: asyncio.Event, max_wait: float | None) -> None:
        try:
            if self._closing:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait):
                    await signal.wait()
        finally:
            self._listeners.pop(signal, None)

    def _ensure_poller(self) -> None:
        if self._poller is None and not self._closing:
            self._poller = asyncio.create_task(self._poll(), name="fittracker-bus:poll")

    async def _poll(self) -> None:
        """Notice events appended by other processes: a cheap ``MAX(seq)`` read per interval."""
        last: int | None = None
        while not self._closing:
            try:
                head = await self._run(self._log.max_seq)
            except BusClosedError:
                return
            except Exception:
                log.warning("event bus: polling %s failed", self.path, exc_info=True)
            else:
                if head != last:
                    last = head
                    self._wake()
            await asyncio.sleep(self._poll_interval)

    async def _consume(self, group: str, handlers: Mapping[str, Handler]) -> None:
        types = types_param(list(handlers))
        # Look for stale claims a few times per timeout; a failed event waits at most
        # visibility_timeout * 1.25 for its retry.
        reclaim_every = max(self._poll_interval, self._visibility_timeout / 4)
        next_reclaim = 0.0  # on start, take over what a dead consumer left behind
        kinds = frozenset(handlers)
        while not self._closing:
            signal = self._listen(kinds)
            try:
                batch: list[Delivery] = []
                if time.monotonic() >= next_reclaim:
                    batch, dead = await self._run(
                        self._log.reclaim,
                        group,
                        types,
                        self.consumer,
                        self._visibility_timeout,
                        self._max_deliveries,
                        self._batch_size,
                    )
                    self._report_dead(group, dead)
                    if len(batch) + len(dead) < self._batch_size:
                        next_reclaim = time.monotonic() + reclaim_every
                if not batch:
                    batch = await self._run(self._log.claim, group, types, self.consumer, self._batch_size)
                if batch:
                    self._listeners.pop(signal, None)
                    await self._deliver(group, handlers, batch)
                    continue
            except BusClosedError:
                self._listeners.pop(signal, None)
                return
            except Exception:
                # Never let the consumer die: unacked entries stay pending and are retried.
                self._listeners.pop(signal, None)
                log.exception("event bus: consumer for group %r failed; retrying", group)
                await asyncio.sleep(_ERROR_BACKOFF)
                continue
            await self._wait(signal, max(0.0, next_reclaim - time.monotonic()))

    async def _deliver(self, group: str, handlers: Mapping[str, Handler], batch: list[Delivery]) -> None:
        await in_subject_lanes(
            batch,
            lambda item: item.event.subject or item.event.id,
            functools.partial(self._deliver_lane, group, handlers),
        )

    async def _deliver_lane(self, group: str, handlers: Mapping[str, Handler], lane: list[Delivery]) -> None:
        for index, item in enumerate(lane):
            if self._closing:
                await self._run(self._log.release, group, self.consumer, [d.seq for d in lane[index:]])
                return
            if not await self._still_ours(group, item):
                continue
            event = item.event
            handler = handlers[event.type]
            if not await run_handler(handler, event, group, item.deliveries, self._max_deliveries):
                self._handled(group, event.type, "error")
                continue
            await self._run_write(self._log.ack, group, item.seq)
            self._handled(group, event.type, "ok")

    async def _still_ours(self, group: str, item: Delivery) -> bool:
        """Skip entries acked or taken over by another consumer since we claimed them.

        Nobody can take an entry over before it was idle for the visibility timeout, and its
        idle time is at most our time since ``claimed_at``: a fresh entry needs no read.
        """
        if time.monotonic() - item.claimed_at < self._visibility_timeout / 2:
            return True
        return await self._run_point(self._log.owns, group, item.seq, self.consumer)

    def _report_dead(self, group: str, dead: list[Delivery]) -> None:
        for item in dead:
            log.error(
                "event bus: group %r gave up on %s %s after %d deliveries; moved to dead_letters",
                group,
                item.event.type,
                item.event.id,
                item.deliveries,
                extra={"event_id": item.event.id, "request_id": item.event.request_id},
            )
            self._handled(group, item.event.type, "dead")

    def _handled(self, group: str, event_type: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.handled(group, event_type, outcome)
