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

Inline writes are group-committed too. The first one in an event-loop iteration opens a
transaction (the loop then holds the connection), the rest of the iteration's inline writes
join it (each atomic by itself), and the commit runs as the loop's next callback; only then do
the writers get their results. A COMMIT apiece was a twentieth of the loop's time when every
request wrote several rows. Inline reads in that window run inside the open transaction and
see its writes before they are committed (reads on the thread see a batch's the same way, but
get their results after the commit). Should that commit fail (a full disk), the writers get
the error, and such a read has seen rows that are not there.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")
MAX_BATCH = 256  # items per transaction: bounds how long one batch holds the write lock


class _Transaction:
    """``transaction()``'s context manager: a class, as it wraps every write (a generator-based
    one cost more than the statements it ran)."""

    __slots__ = ("_conn", "_nested")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._nested = conn.in_transaction

    def __enter__(self) -> sqlite3.Connection:
        # IMMEDIATE takes the write lock up front, so read-modify-write is atomic across processes.
        self._conn.execute("SAVEPOINT item" if self._nested else "BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        conn = self._conn
        if kind is None:
            conn.execute("RELEASE item" if self._nested else "COMMIT")
        elif not conn.in_transaction:
            pass  # SQLite rolled everything back itself (a full disk does that): nothing to undo
        elif self._nested:
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
        else:
            conn.execute("ROLLBACK")


def transaction(conn: sqlite3.Connection) -> _Transaction:
    """A write transaction, or a savepoint when one is already open (inside a batch)."""
    return _Transaction(conn)


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


def connect_wal(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection to ``path`` (created with its directory) in WAL mode, as our files use it:
    autocommit (we issue BEGIN/COMMIT), usable from the loop and the thread (never both at once:
    :class:`SqliteThread`'s lock), and ``synchronous = NORMAL``, which in WAL mode loses
    nothing when a process dies, only (maybe) on power loss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # ``timeout`` is SQLite's busy timeout: other processes hold the write lock briefly.
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        enable_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


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
        self._busy_ms: int | None = None  # the connection's own busy timeout (0 while inline)
        self._busy_zero = False  # whoever holds ``_lock`` may flip this
        # The inline writes waiting for the loop's commit, and the loop thread holding the
        # connection meanwhile; None when no inline transaction is open.
        self._open: list[tuple[asyncio.Future[Any], Any]] | None = None
        self._open_by = 0
        self._wanted = False  # the thread waits for the connection: inline work queues behind it
        self._lost: Exception | None = None  # what rolled back the open inline transaction

    async def run(self, work: Callable[[], T], *, write: bool = False, inline: bool = False) -> T:
        """``work()`` on the thread; ``write`` says it changes the database, ``inline`` that it is
        short enough to run on the event loop when the thread is idle (see the module).

        Inline writes must be atomic by themselves: one statement, or wrapped in
        ``transaction()``, which a savepoint makes of it inside the loop's open transaction.
        """
        if inline and write:
            joined = self._try_join(work)
            if joined is not None:
                return cast(T, await joined)
        elif inline:
            done, value = self._try_inline(work)
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

    def _holding(self) -> bool:
        """True on the loop thread while its inline transaction is open (it holds ``_lock``)."""
        return self._open is not None and self._open_by == threading.get_ident()

    def _try_inline(self, work: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, result) if the read ``work`` ran here and now; (False, None) if it must go to
        the thread."""
        if self._holding():
            return True, self._call(work)
        if not self._opened or self._wanted or not self._lock.acquire(blocking=False):
            return False, None  # the thread is running a batch, or about to
        try:
            return True, self._call(work)
        finally:
            self._lock.release()

    def _try_join(self, work: Callable[[], Any]) -> asyncio.Future[Any] | None:
        """Run the write ``work`` in the loop's open transaction (opening it if need be); the
        future resolves after the commit. None if the work must go to the thread instead."""
        if not self._holding():
            if self._open is not None or not self._opened or self._wanted:
                return None  # another thread's transaction, or the thread's turn
            if not self._lock.acquire(blocking=False):
                return None  # the thread is running a batch
            try:
                conn = self._connection()
                self._set_busy_zero(conn, True)  # never wait here for another process's write lock
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                self._lock.release()
                if _is_busy(exc):
                    return None  # another process writes: wait for the lock on the thread
                raise self._translate(exc) from exc
            except BaseException:
                self._lock.release()
                raise
            self._open, self._open_by = [], threading.get_ident()
            asyncio.get_running_loop().call_soon(self._commit_open)
        assert self._open is not None
        if self._lost is not None:
            return None  # an error rolled the open transaction back: queue for a fresh one
        try:
            value = self._call(work)  # atomic by itself (see ``run``): a failure rolls back alone
        except Exception as exc:
            if not self._connection().in_transaction:  # ... unless SQLite rolled all back (full disk)
                self._lost = exc
            raise
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._open.append((future, value))
        return future

    def _commit_open(self) -> None:
        pending, self._open, self._open_by = self._open or [], None, 0
        lost, self._lost = self._lost, None
        try:
            conn = self._connection()
            try:
                if lost is not None and not conn.in_transaction:
                    raise lost  # the transaction these writes were in is gone
                conn.execute("COMMIT")
                failure: Exception | None = None
            except Exception as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                failure = exc if exc is lost else self._translate(exc)
        finally:
            self._lock.release()
        for future, value in pending:
            if future.cancelled():
                continue
            if failure is None:
                future.set_result(value)
            else:
                future.set_exception(failure)

    def _call(self, work: Callable[[], Any]) -> Any:
        try:
            return work()
        except Exception as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def _set_busy_zero(self, conn: sqlite3.Connection, zero: bool) -> None:
        """Switch the busy timeout between 0 (inline) and the connection's own; the caller holds
        ``_lock``. Only a switch costs a statement: runs of inline work pay nothing."""
        if self._busy_zero == zero:
            return
        if self._busy_ms is None:
            self._busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute(f"PRAGMA busy_timeout = {0 if zero else self._busy_ms}")
        self._busy_zero = zero

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
            self._wanted = True  # the loop stops starting inline work until we have had a turn
            with self._lock:
                self._wanted = False
                outcomes = self._run_batch(batch)
            _deliver(batch, outcomes)

    def _run_batch(self, batch: list[_Item]) -> list[tuple[bool, Any]]:
        try:
            conn = self._connection()
        except Exception as exc:
            failed = (False, self._translate(exc))
            return [failed] * len(batch)
        self._opened = True
        try:
            self._set_busy_zero(conn, False)  # the thread waits for other processes' locks
        except Exception as exc:
            failed = (False, self._translate(exc))
            return [failed] * len(batch)
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
                if grouped and not conn.in_transaction:
                    # SQLite rolled the whole batch back (a full disk does): none of it happened,
                    # and the rest must not run outside the batch's transaction.
                    return [outcomes[-1]] * len(batch)
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
