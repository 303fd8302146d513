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
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
        self._connection = connection  # opens lazily, on the thread
        self._translate = translate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._queue: list[_Item] = []
        self._draining = False

    async def run(self, work: Callable[[], T], *, write: bool = False) -> T:
        """``work()`` on the thread; ``write`` says it changes the database (see the module)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append((work, write, future))
            start, self._draining = not self._draining, True
        if start:
            self._executor.submit(self._drain, loop)
        return await future

    async def shutdown(self, last: Callable[[], None]) -> None:
        """Run ``last`` (closing the connection) after everything queued, then stop the thread."""
        try:
            await self.run(last)
        finally:
            self._executor.shutdown(wait=False)

    # --- the thread ------------------------------------------------------------------------
    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if not batch:
                    self._draining = False
                    return
            outcomes = self._run_batch(batch)
            try:
                loop.call_soon_threadsafe(_settle, batch, outcomes)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return

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


def _settle(batch: list[_Item], outcomes: list[tuple[bool, Any]]) -> None:
    for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
