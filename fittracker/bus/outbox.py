"""Where the Redis bus keeps events it could not hand to Redis: a SQLite file on local disk.

A publish that finds Redis unreachable must neither lose the event nor fail the request that
caused it (the request's own writes are already committed). So the event goes here, durably,
and the bus's forwarder moves it to the stream once Redis answers again, oldest first.

The file (``bus-outbox.db`` in the data dir) is shared by the processes of one host, so a
worker killed during an outage leaves nothing stranded: any process's forwarder drains it.
A forwarder leases a batch before sending it, and only when no other lease is live, so one
process forwards at a time and a batch keeps its order. An entry is deleted after Redis
acknowledged it; a crash in between sends it again after the lease ran out, which the bus's
at-least-once contract already allows (handlers dedupe by event id).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson

from fittracker.bus.base import Event
from fittracker.sqlite_thread import SqliteThread, connect_wal, transaction

FILE_NAME = "bus-outbox.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope TEXT NOT NULL,
    stored_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0
)
"""


class Outbox:
    """Events waiting for Redis, in publish order (see the module docstring)."""

    def __init__(self, data_dir: Path, *, lease_s: float = 30.0, busy_timeout: float = 5.0) -> None:
        self.path = data_dir / FILE_NAME
        self._lease_s = lease_s
        self._busy_timeout = busy_timeout
        self._db: sqlite3.Connection | None = None
        self._thread = SqliteThread("fittracker-outbox", self._connection)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = connect_wal(self.path, self._busy_timeout)
            try:
                db.execute(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    async def put(self, event: Event) -> None:
        """Keep ``event`` until it is forwarded; returns once it is committed."""
        envelope = orjson.dumps(event.to_dict()).decode()
        await self._thread.run(
            lambda: self._connection().execute(
                "INSERT INTO outbox (envelope, stored_at) VALUES (?, ?)", (envelope, time.time())
            ),
            write=True,
        )

    async def lease(self, limit: int) -> list[tuple[int, Event]]:
        """The oldest ``limit`` entries, leased to the caller; empty while another lease is live."""

        def take() -> list[tuple[int, Event]]:
            with transaction(self._connection()) as db:
                now = time.time()
                if db.execute("SELECT 1 FROM outbox WHERE lease_until > ? LIMIT 1", (now,)).fetchone():
                    return []
                rows = db.execute(
                    "UPDATE outbox SET lease_until = ? WHERE seq IN "
                    "(SELECT seq FROM outbox ORDER BY seq LIMIT ?) RETURNING seq, envelope",
                    (now + self._lease_s, limit),
                ).fetchall()
            rows.sort()  # RETURNING gives no order guarantee
            return [(seq, Event.from_dict(orjson.loads(envelope))) for seq, envelope in rows]

        return await self._thread.run(take, write=True)

    async def forwarded(self, seqs: list[int]) -> None:
        """Forget entries Redis has acknowledged."""
        await self._each("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))", seqs)

    async def release(self, seqs: list[int]) -> None:
        """Give up a lease early (Redis failed mid-batch): the entries are free to send again."""
        await self._each(
            "UPDATE outbox SET lease_until = 0 WHERE seq IN (SELECT value FROM json_each(?))", seqs
        )

    async def _each(self, sql: str, seqs: list[int]) -> None:
        """``sql`` for the entries ``seqs``, bound as one JSON parameter (the SQL stays constant)."""
        params = (orjson.dumps(seqs).decode(),)
        await self._thread.run(lambda: self._connection().execute(sql, params), write=True)

    async def size(self) -> int:
        row = await self._thread.run(
            lambda: self._connection().execute("SELECT count(*) FROM outbox").fetchone()
        )
        return int(row[0])

    async def close(self) -> None:
        def last() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._thread.shutdown(last)
