"""Redis Streams commands for the Redis event bus: the stream, its groups, their pending lists.

The counterpart of :mod:`fittracker.bus.sqlite_log`: each method is one step of the
delivery protocol in one or two commands; the loops, logging and metrics live in
:mod:`fittracker.bus.redis`.

Entries have three fields: ``type`` and ``id`` (readable with ``redis-cli``) and
``envelope``, the CloudEvents JSON that is the source of truth. Dead letters go to
``<stream>:dead`` with the fields ``group``, ``entry``, ``id``, ``type``, ``deliveries``,
``consumer`` and ``envelope``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from fittracker.bus.base import Event

# The largest sequence part of a stream id: "<ms>-<this>" is the last id of millisecond <ms>.
_MAX_SEQ = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stream entry handed to this consumer: its id, the decoded event, the attempt."""

    entry_id: str
    fields: Mapping[str, str]
    event: Event | None  # None when the entry is not a valid envelope
    deliveries: int
    claimed_at: float  # monotonic time taken just before the claiming command


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of a one-stream ``XREAD``/``XREADGROUP`` reply (RESP2: ``[[stream, entries]]``)."""
    return [(str(entry_id), dict(fields or {})) for entry_id, fields in reply[0][1]] if reply else []


def decode(fields: Mapping[str, str]) -> Event | None:
    try:
        return Event.from_dict(orjson.loads(fields["envelope"]))
    except (KeyError, TypeError, ValueError):
        return None


def id_before(moment: datetime) -> str:
    """The last stream id before ``moment`` (ids are the Redis server's millisecond clock)."""
    ms = int(moment.timestamp() * 1000)
    return f"{ms - 1}-{_MAX_SEQ}" if ms > 0 else "0-0"


class RedisStream:
    """One stream as seen by one consumer (``consumer``) of any number of groups."""

    def __init__(
        self, client: aioredis.Redis, name: str, *, consumer: str, maxlen: int, batch_size: int, idle_ms: int
    ) -> None:
        self.redis = client
        self.name = name
        self.dead_letters = f"{name}:dead"
        self.consumer = consumer
        self._maxlen = maxlen
        self._batch_size = batch_size
        self._idle_ms = idle_ms

    async def append(self, event: Event) -> str:
        """``XADD`` with approximate ``MAXLEN`` trimming (cheap: whole nodes are dropped)."""
        fields = {"type": event.type, "id": event.id, "envelope": orjson.dumps(event.to_dict()).decode()}
        entry_id = await self.redis.xadd(self.name, fields, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
        return str(entry_id)

    async def create_group(self, group: str) -> None:
        """Create ``group`` at id 0 (see :mod:`fittracker.bus.redis`); keep an existing one."""
        try:
            await self.redis.xgroup_create(self.name, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, group: str, block_ms: int) -> list[Delivery]:
        """``XREADGROUP >``: claim entries never delivered to the group, waiting up to ``block_ms``."""
        claimed_at = time.monotonic()
        reply = await self.redis.xreadgroup(
            group, self.consumer, {self.name: ">"}, count=self._batch_size, block=block_ms
        )
        return [Delivery(i, f, decode(f), 1, claimed_at) for i, f in _entries(reply)]

    async def reclaim(self, group: str, cursor: str) -> tuple[list[Delivery], int, str]:
        """``XAUTOCLAIM`` entries idle for the visibility timeout, with their delivery counts.

        Returns the claimed entries (``deliveries`` includes this one), how many pending
        entries had vanished from the stream (trimmed by ``MAXLEN`` before being handled;
        Redis drops them from the pending list), and the cursor to continue the scan from.
        """
        claimed_at = time.monotonic()
        reply: Any = await self.redis.xautoclaim(
            self.name, group, self.consumer, self._idle_ms, start_id=cursor, count=self._batch_size
        )
        next_cursor, claimed = str(reply[0]), [(str(i), dict(f)) for i, f in reply[1] if f]
        vanished = len(reply[2]) if len(reply) > 2 else 0
        if not claimed:
            return [], vanished, next_cursor
        # XAUTOCLAIM does not report delivery counts; XPENDING of what we now own does.
        rows = await self.redis.xpending_range(
            self.name, group, claimed[0][0], claimed[-1][0], len(claimed), consumername=self.consumer
        )
        counts = {row["message_id"]: int(row["times_delivered"]) for row in rows}
        # Other entries of ours in that range (failed, not yet idle) can crowd some out.
        for entry_id in [i for i, _ in claimed if i not in counts]:
            rows = await self.redis.xpending_range(self.name, group, entry_id, entry_id, 1)
            if rows:
                counts[entry_id] = int(rows[0]["times_delivered"])
        # An entry missing from the pending list was acknowledged meanwhile: nothing to do.
        batch = [Delivery(i, f, decode(f), counts[i], claimed_at) for i, f in claimed if i in counts]
        return batch, vanished, next_cursor

    async def ack(self, group: str, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.xack(self.name, group, *entry_ids)

    async def owner(self, group: str, entry_id: str) -> str | None:
        """The consumer an entry is pending for, or ``None`` once it was acknowledged."""
        rows = await self.redis.xpending_range(self.name, group, entry_id, entry_id, 1)
        return str(rows[0]["consumer"]) if rows else None

    async def release(self, group: str, items: list[Delivery]) -> None:
        """Give back claimed entries that were never handled, so others take them at once.

        ``XCLAIM ... TIME 0`` makes them look idle since 1970, so the next consumer's
        ``XAUTOCLAIM`` takes them without waiting; ``RETRYCOUNT`` undoes this delivery's
        count. Entries no longer pending for this consumer (taken over) are left alone; so
        are any crowded out of the XPENDING page, which just wait for the visibility timeout.
        """
        if not items:
            return
        rows = await self.redis.xpending_range(
            self.name, group, items[0].entry_id, items[-1].entry_id, len(items), consumername=self.consumer
        )
        ours = {row["message_id"] for row in rows}
        by_retries: dict[int, list[Any]] = {}
        for item in items:
            if item.entry_id in ours:
                by_retries.setdefault(max(item.deliveries - 1, 0), []).append(item.entry_id)
        for retries, ids in by_retries.items():
            await self.redis.xclaim(
                self.name, group, self.consumer, 0, ids, time=0, retrycount=retries, justid=True
            )

    async def bury(self, group: str, item: Delivery, deliveries: int) -> None:
        """Copy an entry to the dead-letter stream and acknowledge it, in one transaction."""
        fields = item.fields
        record = {
            "group": group,
            "entry": item.entry_id,
            "id": fields.get("id", ""),
            "type": fields.get("type", ""),
        }
        record |= {
            "deliveries": str(deliveries),
            "consumer": self.consumer,
            "envelope": fields.get("envelope", ""),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letters, record, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.xack(self.name, group, item.entry_id)
            await pipe.execute()

    async def read_after(self, after: str, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Entries after id ``after``: ``XRANGE`` for history, ``XREAD BLOCK`` to wait for more."""
        if block_ms is None:
            page = await self.redis.xrange(self.name, min=f"({after}", count=self._batch_size)
            return _entries([[self.name, page]])
        reply = await self.redis.xread({self.name: after}, count=self._batch_size, block=block_ms)
        return _entries(reply)
