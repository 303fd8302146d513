"""The live connections of THIS process, and the loops that feed and police them.

Whatever process created a notification announces it on the bus; every notifications
process tails those announcements (a broadcast, not a consumer group) and offers each one to
its own connections of that user. A single process takes the same path, so there is one way
a message reaches a socket in every deployment. The hub also re-checks every connection's
token on a timer (expired or revoked: closed with 4001) and prunes old stream entries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode
from fittracker_plugins.notifications.connection import TOKEN_GONE, Connection
from fittracker_plugins.notifications.stream import CREATED, READ, Message

from fittracker import PluginContext, Unauthorized
from fittracker.bus import Event
from fittracker.http.responses import dumps

MAINTENANCE_EVERY_S = 3600.0


class Hub:
    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx
        self.by_user: defaultdict[str, set[Connection]] = defaultdict(set)
        self.auth_check_s = float(ctx.settings.get("auth_check_interval_s", 5.0))
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def count(self) -> int:
        return sum(len(conns) for conns in self.by_user.values())

    def add(self, conn: Connection) -> None:
        self.by_user[conn.user_id].add(conn)

    def remove(self, conn: Connection) -> None:
        conns = self.by_user.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_user[conn.user_id]

    def deliver(self, user_id: str, message: Message) -> None:
        """Offer a message to each local connection of the user: enqueue only, never wait."""
        conns = self.by_user.get(user_id)
        if conns:
            frame = dumps(message)  # once for all of the user's sockets
            for conn in list(conns):
                conn.offer(message, frame)

    # --- background loops --------------------------------------------------------------------
    def start(self, maintenance: Callable[[], Awaitable[None]]) -> None:
        self._tasks = [
            asyncio.create_task(
                self.ctx.follow({CREATED, READ}, self._announced), name="notifications:follow"
            ),
            asyncio.create_task(
                self._every(self.auth_check_s, self._check_tokens), name="notifications:auth"
            ),
            asyncio.create_task(self._every(MAINTENANCE_EVERY_S, maintenance), name="notifications:prune"),
        ]

    def _announced(self, event: Event) -> None:
        # Repeats (the tail resumes after a failure) are dropped by each connection by seq.
        user_id, message = event.data.get("user_id"), event.data.get("message")
        if isinstance(user_id, str) and isinstance(message, dict):
            self.deliver(user_id, message)

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:
                self.ctx.log.exception("notifications background work failed")

    async def _check_tokens(self) -> None:
        for conns in list(self.by_user.values()):
            for conn in list(conns):
                try:
                    self.ctx.auth.verify(conn.token)
                except Unauthorized as exc:
                    conn.shut(TOKEN_GONE, exc.detail)

    async def close(self) -> None:
        """Close every connection (going away), then stop the loops."""
        for conns in list(self.by_user.values()):
            for conn in list(conns):
                conn.shut(WSCloseCode.GOING_AWAY, "server shutting down")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
