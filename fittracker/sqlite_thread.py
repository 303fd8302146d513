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

Under load this turns N round trips and N commits into one of each; alone, an item costs what
it did before.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

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

    async def run(self, work: Callable[[], T], *, write: bool = False) -> T:
        """``work()`` on the thread; ``write`` says it changes the database (see the module)."""
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
            _deliver(batch, self._run_batch(batch))

    def _run_batch(self, batch: list[_Item]) -> list[tuple[bool, Any]]:
        try:
            conn = self._connection()
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
