"""One SQLite connection on one thread, with group commit.

The storage backend and the event log both keep their sqlite3 connection on a thread of its
own, so the event loop never blocks. Handing each small statement to that thread separately
costs more than the statement (a thread wake-up, then a loop wake-up to deliver the result),
and committing each write separately costs a WAL commit apiece. So callers queue their work
here, and the thread runs everything queued so far as one batch:

- if any item of the batch writes, the batch is ONE transaction (``BEGIN IMMEDIATE`` …
  ``COMMIT``), each item inside a savepoint of its own, so a failing item rolls back only its
  own changes; no item's result is delivered before the commit has succeeded, so nothing is
  acknowledged that a crash could still lose, and a failed commit fails every item;
- a batch of reads only runs without a transaction (other processes' writers are not held up);
- results go back to the event loop in one wake-up per batch.

Under load this turns N round trips and N commits into one of each.

A round trip to the thread is not free either: waking a sleeping thread, then the sleeping
event loop, cost 0.1 ms at best and 1-10 ms at the 90th-99th percentile on a small VM
(measured), several times what a primary-key read or write costs. So work the caller marks
``inline`` (point reads and writes by primary key, appends) runs on the event loop itself when
the thread is idle. It never waits there: if the thread holds the connection, or another
process holds the write lock, the work goes to the thread like any other.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar, cast

T = TypeVar("T")
MAX_BATCH = 256  # items per transaction: bounds how long one batch holds the write lock


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, or a savepoint when one is already open (inside a batch)."""
    nested = conn.in_transaction
    # IMMEDIATE takes the write lock up front, so read-modify-write is atomic across processes.
    conn.execute("SAVEPOINT item" if nested else "BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if nested:
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
        elif conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("RELEASE item" if nested else "COMMIT")


def enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch the file to WAL, retrying while another connection holds the lock.

    SQLite does not call the busy handler for this pragma: two processes opening a new file at
    once would otherwise fail with "database is locked".
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_Item = tuple[Callable[[], Any], bool, "asyncio.Future[Any]"]


class SqliteThread:
    """Runs callables against one connection on one thread, batching what queues up."""

    def __init__(
        self,
        name: str,
        connection: Callable[[], sqlite3.Connection],
        translate: Callable[[Exception], Exception] = lambda exc: exc,
    ) -> None:
        self._name = name
        self._connection = connection  # opens lazily, on the thread
        self._translate = translate
        self._inbox: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the connection, used by one thread at a time
        self._opened = False  # opening may wait for other processes: only ever on the thread
        self._busy_ms: int | None = None  # the connection's own busy timeout, restored after inline work

    async def run(self, work: Callable[[], T], *, write: bool = False, inline: bool = False) -> T:
        """``work()`` on the thread; ``write`` says it changes the database, ``inline`` that it is
        short enough to run on the event loop when the thread is idle (see the module)."""
        if inline:
            done, value = self._try_inline(work, write)
            if done:
                return cast(T, value)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        self._inbox.put((work, write, future))
        return await future

    async def shutdown(self, last: Callable[[], None]) -> None:
        """Run ``last`` (closing the connection) after everything queued, then stop the thread."""
        try:
            await self.run(last)
        finally:
            self._inbox.put(None)
            self._thread = None

    def _try_inline(self, work: Callable[[], Any], write: bool) -> tuple[bool, Any]:
        """(True, result) if ``work`` ran here and now; (False, None) if it must go to the thread."""
        if not self._opened or not self._lock.acquire(blocking=False):
            return False, None  # the thread is running a batch
        try:
            try:
                conn = self._connection()
                if write:  # never wait here for another process's write lock
                    if self._busy_ms is None:
                        self._busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
                    conn.execute("PRAGMA busy_timeout = 0")
                try:
                    return True, work()
                finally:
                    if write:
                        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    return False, None  # nothing was written (rolled back): wait on the thread
                raise self._translate(exc) from exc
            except Exception as exc:
                translated = self._translate(exc)
                if translated is exc:
                    raise
                raise translated from exc
        finally:
            self._lock.release()

    # --- the thread ------------------------------------------------------------------------
    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._inbox.get()  # sleeps until there is work
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:  # and takes whatever else queued up meanwhile
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            with self._lock:
                outcomes = self._run_batch(batch)
            _deliver(batch, outcomes)

    def _run_batch(self, batch: list[_Item]) -> list[tuple[bool, Any]]:
        try:
            conn = self._connection()
        except Exception as exc:
            failed = (False, self._translate(exc))
            return [failed] * len(batch)
        self._opened = True
        grouped = any(write for _, write, _ in batch) and len(batch) > 1
        if grouped:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except Exception as exc:
                failed = (False, self._translate(exc))
                return [failed] * len(batch)
        outcomes: list[tuple[bool, Any]] = []
        for work, _, _ in batch:
            try:
                if grouped:
                    with transaction(conn):
                        outcomes.append((True, work()))
                else:
                    outcomes.append((True, work()))
            except Exception as exc:
                outcomes.append((False, self._translate(exc)))
        if grouped:
            try:
                conn.execute("COMMIT")
            except Exception as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                failed = (False, self._translate(exc))
                return [failed if ok else (ok, value) for ok, value in outcomes]
        return outcomes


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "database is locked" in message or "database is busy" in message


def _deliver(batch: list[_Item], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand the outcomes to the waiting event loop(s): one wake-up per loop and batch."""
    loops: dict[asyncio.AbstractEventLoop, list[int]] = {}
    for index, (_, _, future) in enumerate(batch):
        loops.setdefault(future.get_loop(), []).append(index)
    for loop, indexes in loops.items():
        mine = indexes if len(loops) > 1 else range(len(batch))
        with suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, [batch[i] for i in mine], [outcomes[i] for i in mine])


def _settle(batch: list[_Item], outcomes: list[tuple[bool, Any]]) -> None:
    for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
