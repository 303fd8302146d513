"""Group commit: concurrent work shares a transaction, and no result escapes an uncommitted one."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from fittracker.sqlite_thread import SqliteThread, enable_wal, transaction


class Db:
    """A file with a table and a counter of transactions begun on the connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.begun = 0

    def connection(self) -> sqlite3.Connection:
        if self.conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, parent INTEGER "
                "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )
            conn.set_trace_callback(self._trace)
            self.conn = conn
        return self.conn

    def _trace(self, statement: str) -> None:
        if statement.startswith("BEGIN"):
            self.begun += 1

    def rows(self) -> list[int]:
        with sqlite3.connect(self.path) as other:  # a second connection sees only what committed
            return [r[0] for r in other.execute("SELECT id FROM item ORDER BY id")]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[Db, SqliteThread]]:
    db = Db(tmp_path / "t.db")
    thread = SqliteThread("test-sqlite", db.connection)
    await thread.run(lambda: db.connection())  # open it (and create the tables) first
    db.begun = 0
    yield db, thread
    await thread.shutdown(db.close)


def insert(db: Db, item_id: int, parent: int | None = None) -> int:
    with transaction(db.connection()) as conn:
        conn.execute("INSERT INTO item (id, parent) VALUES (?, ?)", (item_id, parent))
    return item_id


async def test_concurrent_writes_share_transactions(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    done = await asyncio.gather(*(thread.run(partial(insert, store, n), write=True) for n in range(200)))
    assert done == list(range(200))
    assert store.rows() == list(range(200))
    # 200 writers queued at once: far fewer transactions than writes (the first runs alone).
    assert store.begun < 20, store.begun


async def test_a_failing_item_rolls_back_only_itself(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    await thread.run(lambda: insert(store, 5), write=True)

    def two_then_duplicate() -> None:
        insert(store, 6)
        insert(store, 5)  # the primary key exists: this item fails, and takes its 6 with it

    results = await asyncio.gather(
        thread.run(lambda: insert(store, 1), write=True),
        thread.run(two_then_duplicate, write=True),
        thread.run(lambda: insert(store, 2), write=True),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert store.rows() == [1, 2, 5]


async def test_a_failed_commit_fails_every_item_and_keeps_nothing(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    # A deferred foreign key is checked at COMMIT: the whole batch's commit fails.
    results = await asyncio.gather(
        thread.run(lambda: insert(store, 1), write=True),
        thread.run(lambda: insert(store, 2, parent=99), write=True),
        thread.run(lambda: insert(store, 3), write=True),
        return_exceptions=True,
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert store.rows() == []
    assert not store.connection().in_transaction
    assert await thread.run(lambda: insert(store, 4), write=True) == 4  # and it carries on
    assert store.rows() == [4]


async def test_reads_alone_take_no_write_lock(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db

    def count() -> int:
        return int(store.connection().execute("SELECT COUNT(*) FROM item").fetchone()[0])

    assert await asyncio.gather(*(thread.run(count) for _ in range(20))) == [0] * 20
    assert store.begun == 0


async def test_errors_are_translated(tmp_path: Path) -> None:
    store = Db(tmp_path / "t.db")
    thread = SqliteThread("test-sqlite", store.connection, lambda exc: LookupError(str(exc)))
    try:
        with pytest.raises(LookupError, match="no such table"):
            await thread.run(lambda: store.connection().execute("SELECT * FROM missing").fetchall())
    finally:
        await thread.shutdown(store.close)


async def test_short_work_runs_on_the_loop_when_the_thread_is_idle(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    where = await thread.run(threading.current_thread, inline=True)
    assert where is threading.current_thread()  # no hop to the database's thread
    assert await thread.run(partial(insert, store, 1), write=True, inline=True) == 1
    assert store.rows() == [1]
    elsewhere = await thread.run(threading.current_thread)  # not marked inline: the thread
    assert elsewhere is not threading.current_thread()


async def test_inline_never_waits_for_another_process_lock(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        write = asyncio.ensure_future(thread.run(partial(insert, store, 7), write=True, inline=True))
        ticks = 0
        for _ in range(10):  # the event loop keeps running meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 10 and not write.done()
    finally:
        other.execute("COMMIT")
        other.close()
    assert await write == 7  # it waited on the database's thread, then went through
    assert store.rows() == [7]


async def test_inline_writes_of_one_loop_iteration_share_a_commit(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    writes = [
        asyncio.ensure_future(thread.run(partial(insert, store, n), write=True, inline=True))
        for n in range(5)
    ]
    await asyncio.sleep(0)  # the five ran on the loop, in one open transaction...
    assert store.connection().in_transaction
    assert store.rows() == [] and not any(w.done() for w in writes)  # ...not committed, not answered
    assert await asyncio.gather(*writes) == [0, 1, 2, 3, 4]
    assert store.rows() == [0, 1, 2, 3, 4]
    assert store.begun == 1


async def test_a_failing_inline_write_fails_alone_and_at_once(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    await thread.run(partial(insert, store, 5), write=True)
    first = asyncio.ensure_future(thread.run(partial(insert, store, 1), write=True, inline=True))
    await asyncio.sleep(0)
    with pytest.raises(sqlite3.IntegrityError):  # raised before the commit: nothing to wait for
        await thread.run(partial(insert, store, 5), write=True, inline=True)
    assert await first == 1
    assert store.rows() == [1, 5]


async def test_a_failed_inline_commit_fails_every_write_in_it(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db
    results = await asyncio.gather(
        thread.run(partial(insert, store, 1), write=True, inline=True),
        thread.run(partial(insert, store, 2, 99), write=True, inline=True),  # fails at COMMIT
        return_exceptions=True,
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert store.rows() == [] and not store.connection().in_transaction
    assert await thread.run(partial(insert, store, 3), write=True, inline=True) == 3
    assert store.rows() == [3]


async def test_inline_reads_see_the_open_transaction(db: tuple[Db, SqliteThread]) -> None:
    store, thread = db

    def ids() -> list[int]:
        return [r[0] for r in store.connection().execute("SELECT id FROM item ORDER BY id")]

    write = asyncio.ensure_future(thread.run(partial(insert, store, 1), write=True, inline=True))
    await asyncio.sleep(0)
    assert await thread.run(ids, inline=True) == [1]  # on the loop, inside the open transaction
    await write


async def test_the_thread_gets_its_turn_while_the_loop_keeps_writing(db: tuple[Db, SqliteThread]) -> None:
    """Inline writers on the loop never starve work queued for the thread."""
    store, thread = db
    stop = asyncio.Event()

    async def writer(start: int) -> None:
        n = start
        while not stop.is_set():
            await thread.run(partial(insert, store, n), write=True, inline=True)
            n += 1

    writers = [asyncio.ensure_future(writer(k * 1_000_000)) for k in range(4)]
    try:
        for n in range(20):  # each waits for the thread to get the connection
            await asyncio.wait_for(thread.run(partial(insert, store, -1 - n), write=True), 2)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert len([r for r in store.rows() if r < 0]) == 20


def test_wal_switch_waits_for_a_lock_held_elsewhere(tmp_path: Path) -> None:
    # Two processes opening a new file at once: SQLite does not wait by itself for this pragma.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.2, lambda: holder.execute("COMMIT")).start()
    other = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("PRAGMA journal_mode = WAL")  # what happened before
        enable_wal(other, timeout_s=5.0)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()
        holder.close()


def too_big(db: Db, item_id: int) -> int:
    """An item the capped file has no room for: SQLITE_FULL, and SQLite itself rolls back."""
    with transaction(db.connection()) as conn:
        conn.execute("INSERT INTO item (id) VALUES (?)", (item_id,))
        conn.execute("INSERT INTO blob (b) VALUES (zeroblob(200000))")
    return item_id


async def cap_file(store: Db, thread: SqliteThread) -> None:
    def cap() -> None:
        conn = store.connection()
        conn.execute("CREATE TABLE IF NOT EXISTS blob (b BLOB)")
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 1}")

    await thread.run(cap, write=True)


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "inline"])
async def test_a_full_file_never_answers_a_write_wrongly(db: tuple[Db, SqliteThread], inline: bool) -> None:
    """Whatever SQLite rolls back on a full disk, a write reported done is there and one reported
    failed is not; and writing resumes when there is room again."""
    store, thread = db
    await cap_file(store, thread)
    results = await asyncio.gather(
        thread.run(partial(insert, store, 1), write=True, inline=inline),
        thread.run(partial(too_big, store, 2), write=True, inline=inline),
        thread.run(partial(insert, store, 3), write=True, inline=inline),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.OperationalError) and "full" in str(results[1])
    done = {r for r in results if isinstance(r, int)}
    assert set(store.rows()) == done, results
    assert not store.connection().in_transaction
    await thread.run(lambda: store.connection().execute("PRAGMA max_page_count = 1073741823"))
    assert await thread.run(partial(too_big, store, 4), write=True, inline=inline) == 4
    assert set(store.rows()) == done | {4}
