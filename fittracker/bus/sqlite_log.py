"""Blocking storage for the SQLite event bus: the log, group offsets, the pending list.

The design mirrors Redis Streams so both backends behave alike:

- ``events`` is the stream (``XADD``): append-only, ordered by ``seq``.
- ``groups`` holds each consumer group's ``last_delivered_seq`` (``XREADGROUP >``).
- ``pending`` is the pending-entries list: claimed but not yet acknowledged (``XACK``
  deletes from it; ``XAUTOCLAIM`` takes over entries idle for too long).
- ``dead_letters`` keeps entries that failed ``max_deliveries`` times, with their envelope.

Every method runs on the bus's single executor thread, which owns the connection. Writes
that must be atomic across processes start with ``BEGIN IMMEDIATE``: taking the write lock
up front avoids the lock upgrade from a read transaction that SQLite answers with BUSY.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import orjson

from fittracker.bus.base import Event
from fittracker.sqlite_thread import connect_wal, transaction

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    stored_at REAL NOT NULL,
    envelope TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stored_at ON events (stored_at);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    last_delivered_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    group_name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (group_name, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_claimed_at ON pending (group_name, claimed_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    group_name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    envelope TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    dead_at REAL NOT NULL,
    PRIMARY KEY (group_name, seq)
);
COMMIT;
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pending entry handed to a consumer: the log position, the event, the attempt."""

    seq: int
    event: Event
    deliveries: int
    claimed_at: float  # monotonic time taken just before the claim


def types_param(types: Sequence[str]) -> str:
    """Encode event types as one JSON parameter for ``type IN (SELECT value FROM json_each(?))``.

    One bound parameter keeps every statement constant text: no SQL built from strings.
    """
    return orjson.dumps(sorted(set(types))).decode()


def _decode(envelope: str) -> Event:
    return Event.from_dict(orjson.loads(envelope))


class SqliteLog:
    """The event log in one SQLite file; not thread-safe, use from one thread only."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._db: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        """The connection, opened (and the schema created) on first use."""
        return self._conn()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = connect_wal(self.path, self._busy_timeout)
            try:
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # A savepoint when the calling batch already holds a transaction (group commit).
        return transaction(self._conn())

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def append(self, event: Event) -> int:
        """Store one event (``XADD``); a single INSERT in autocommit is its own transaction."""
        envelope = orjson.dumps(event.to_dict()).decode()
        cur = self._conn().execute(
            "INSERT INTO events (id, type, time, stored_at, envelope) VALUES (?, ?, ?, ?, ?)",
            (event.id, event.type, event.time, time.time(), envelope),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def max_seq(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    def claim(self, group: str, types: str, consumer: str, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` new events of ``types`` for ``consumer`` (``XREADGROUP >``)."""
        db = self._conn()
        row = db.execute("SELECT last_delivered_seq FROM groups WHERE name = ?", (group,)).fetchone()
        # Cheap check without the write lock: nothing new since the group's offset.
        if row is not None and self.max_seq() <= row[0]:
            return []
        now, claimed_at = time.time(), time.monotonic()
        with self._write() as db:
            # A new group starts at the beginning of the retained log (like XGROUP CREATE 0).
            db.execute("INSERT OR IGNORE INTO groups (name, last_delivered_seq) VALUES (?, 0)", (group,))
            (offset,) = db.execute(
                "SELECT last_delivered_seq FROM groups WHERE name = ?", (group,)
            ).fetchone()
            rows = db.execute(
                "SELECT seq, envelope FROM events WHERE seq > ?"
                " AND type IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
                (offset, types, limit),
            ).fetchall()
            # A short batch means everything up to the head was seen: skip unsubscribed types too.
            new_offset = rows[-1][0] if len(rows) == limit else max(offset, self.max_seq())
            if new_offset == offset:
                return []
            db.executemany(
                "INSERT INTO pending (group_name, seq, consumer, deliveries, claimed_at)"
                " VALUES (?, ?, ?, 1, ?)",
                [(group, seq, consumer, now) for seq, _ in rows],
            )
            db.execute("UPDATE groups SET last_delivered_seq = ? WHERE name = ?", (new_offset, group))
        return [Delivery(seq, _decode(envelope), 1, claimed_at) for seq, envelope in rows]

    def reclaim(
        self, group: str, types: str, consumer: str, idle: float, max_deliveries: int, limit: int
    ) -> tuple[list[Delivery], list[Delivery]]:
        """Take over entries claimed more than ``idle`` seconds ago (``XAUTOCLAIM``).

        Returns ``(redelivered, dead)``: entries already delivered ``max_deliveries`` times
        move to ``dead_letters`` instead of being handed out again.
        """
        query = (
            "SELECT p.seq, p.deliveries, e.envelope FROM pending AS p JOIN events AS e ON e.seq = p.seq"
            " WHERE p.group_name = ? AND p.claimed_at <= ?"
            " AND e.type IN (SELECT value FROM json_each(?)) ORDER BY p.seq LIMIT ?"
        )
        now, claimed_at = time.time(), time.monotonic()
        params = (group, now - idle, types, limit)
        if not self._conn().execute(query, params).fetchone():
            return [], []
        redelivered: list[Delivery] = []
        dead: list[Delivery] = []
        with self._write() as db:
            for seq, deliveries, envelope in db.execute(query, params).fetchall():
                event = _decode(envelope)
                if deliveries >= max_deliveries:
                    db.execute(
                        "INSERT OR REPLACE INTO dead_letters (group_name, seq, event_id, type, envelope,"
                        " deliveries, consumer, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (group, seq, event.id, event.type, envelope, deliveries, consumer, now),
                    )
                    db.execute("DELETE FROM pending WHERE group_name = ? AND seq = ?", (group, seq))
                    dead.append(Delivery(seq, event, deliveries, claimed_at))
                else:
                    db.execute(
                        "UPDATE pending SET consumer = ?, deliveries = deliveries + 1, claimed_at = ?"
                        " WHERE group_name = ? AND seq = ?",
                        (consumer, now, group, seq),
                    )
                    redelivered.append(Delivery(seq, event, deliveries + 1, claimed_at))
        return redelivered, dead

    def owns(self, group: str, seq: int, consumer: str) -> bool:
        """Is the entry still pending for ``consumer`` (not acked, not taken over)?"""
        row = (
            self._conn()
            .execute("SELECT consumer FROM pending WHERE group_name = ? AND seq = ?", (group, seq))
            .fetchone()
        )
        return row is not None and row[0] == consumer

    def ack(self, group: str, seq: int) -> None:
        self._conn().execute("DELETE FROM pending WHERE group_name = ? AND seq = ?", (group, seq))

    def release(self, group: str, consumer: str, seqs: Sequence[int]) -> None:
        """Give back claimed entries that were never handled, so others take them at once."""
        self._conn().execute(
            "UPDATE pending SET claimed_at = 0, deliveries = MAX(deliveries - 1, 0)"
            " WHERE group_name = ? AND consumer = ? AND seq IN (SELECT value FROM json_each(?))",
            (group, consumer, orjson.dumps(list(seqs)).decode()),
        )

    def read_after(self, after: int, types: str, since: float, limit: int) -> list[tuple[int, Event]]:
        """Events of ``types`` past ``after`` and stored at or after ``since`` (for ``tail``)."""
        rows = (
            self._conn()
            .execute(
                "SELECT seq, envelope FROM events WHERE seq > ? AND stored_at >= ?"
                " AND type IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
                (after, since, types, limit),
            )
            .fetchall()
        )
        return [(seq, _decode(envelope)) for seq, envelope in rows]

    def trim(self, before: float) -> int:
        """Delete events stored before ``before`` that every group has acknowledged."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM events WHERE stored_at < ?"
                " AND seq <= COALESCE((SELECT MIN(last_delivered_seq) FROM groups), seq)"
                " AND seq NOT IN (SELECT seq FROM pending)",
                (before,),
            )
        return cur.rowcount
