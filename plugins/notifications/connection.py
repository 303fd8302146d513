"""One live WebSocket: a bounded send queue drained by its own writer task.

Fan-out only ever calls :meth:`Connection.offer`, which never awaits: a full queue means the
client cannot keep up, and it is closed with 1013 ("try again later") instead of slowing
anyone else down. The writer owns every write to the socket and keeps the stream in order:

- it starts by replaying stored entries after ``last_event_id`` (the queue already buffers
  live ones, because the connection is registered before the replay reads the database);
- it then sends stream messages in seq order, dropping any seq already sent (the replay
  overlaps the buffer; a redelivered event repeats itself);
- a message that arrives ahead of a missing seq (two workers notified the same user at once
  and their announcements crossed) waits up to ``gap_wait_s``; then the gap is filled from the
  database, and what is still missing is a hole left by a crash and is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, WSMsgType, web
from fittracker_plugins.notifications.stream import Message, Stream, control

from fittracker import Principal
from fittracker.http.responses import dumps

if TYPE_CHECKING:
    import logging

CLOSE_WAIT_S = 5.0
TOKEN_GONE = 4001  # application close code: the token expired or was revoked


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        principal: Principal,
        token: str,
        *,
        queue_size: int,
        gap_wait_s: float,
        log: logging.Logger,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.principal = principal
        self.token = token
        self.user_id = principal.user_id
        # (message, its encoded frame when the fan-out made it once for all of a user's sockets)
        self.queue: asyncio.Queue[tuple[Message, bytes | None]] = asyncio.Queue(maxsize=queue_size)
        self.gap_wait_s = gap_wait_s
        self.log = log
        self.last_sent = 0
        self.pending: dict[int, tuple[Message, bytes | None]] = {}
        self.closing = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    # --- called by fan-out, sweeps and the reader (never awaits the socket) ---------------------
    def offer(self, message: Message, frame: bytes | None = None) -> None:
        """Queue ``message``; ``frame`` is its JSON, when the caller encoded it already."""
        if self.closing:
            return
        try:
            self.queue.put_nowait((message, frame))
        except asyncio.QueueFull:
            self.shut(WSCloseCode.TRY_AGAIN_LATER, "send queue full: reconnect with last_event_id")

    def shut(self, code: int, reason: str) -> None:
        """Close with ``code`` in the background (the writer stops at once)."""
        if self.closing:
            return
        self.closing = True
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            # No drain: a slow consumer's buffers are full, and waiting for them is the problem.
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode(), drain=False), CLOSE_WAIT_S
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.abort()

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, stream: Stream, after: int | None) -> None:
        self._writer = asyncio.create_task(self._run(stream, after), name=f"ws-writer:{self.user_id}")

    async def finish(self) -> None:
        """After the reader is done: stop writing and let a pending close complete."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer

    async def _run(self, stream: Stream, after: int | None) -> None:
        try:
            await self._begin(stream, after)
            await self._pump(stream)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError):
            return  # the socket went away under us; the reader sees it too
        except Exception:
            self.log.exception("notification stream of %s failed", self.user_id)
            self.shut(WSCloseCode.INTERNAL_ERROR, "internal error")

    async def _send(self, message: Message, frame: bytes | None = None) -> None:
        await self.ws.send_frame(frame if frame is not None else dumps(message), WSMsgType.TEXT)

    async def _begin(self, stream: Stream, after: int | None) -> None:
        head = await stream.head(self.user_id)
        if after is None:
            self.last_sent = head
            await self._send(control("ready", {"last_event_id": str(head)}))
            return
        if not await stream.recoverable(self.user_id, after, head):
            self.last_sent = head
            await self._send(control("recovery", {"recovered": False, "last_event_id": str(head)}))
            return
        self.last_sent, replayed = after, 0
        async for message in stream.replay(self.user_id, after):
            await self._send(message)
            self.last_sent, replayed = int(message["id"]), replayed + 1
        await self._send(
            control(
                "recovery", {"recovered": True, "replayed": replayed, "last_event_id": str(self.last_sent)}
            )
        )

    async def _pump(self, stream: Stream) -> None:
        loop = asyncio.get_running_loop()
        gap_deadline: float | None = None
        while True:
            timeout = None if gap_deadline is None else max(0.0, gap_deadline - loop.time())
            try:
                message, frame = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                await self._fill_gap(stream)
                gap_deadline = None if not self.pending else loop.time() + self.gap_wait_s
                continue
            if message["id"] is None:
                await self._send(message, frame)
                continue
            seq = int(message["id"])
            if seq <= self.last_sent:
                continue  # already sent (replay overlap or a repeated announcement)
            self.pending[seq] = (message, frame)
            await self._flush()
            if len(self.pending) > self.queue.maxsize:
                await self._fill_gap(stream)  # do not hold more than the queue would
            if not self.pending:
                gap_deadline = None
            elif gap_deadline is None:
                gap_deadline = loop.time() + self.gap_wait_s

    async def _flush(self) -> None:
        while (following := self.pending.pop(self.last_sent + 1, None)) is not None:
            await self._send(*following)
            self.last_sent += 1

    async def _fill_gap(self, stream: Stream) -> None:
        first_waiting = min(self.pending)
        while batch := await stream.between(self.user_id, self.last_sent, first_waiting):
            for message in batch:
                await self._send(message)
                self.last_sent = int(message["id"])
        self.last_sent = first_waiting - 1  # anything still missing is a hole: skip it
        await self._flush()
