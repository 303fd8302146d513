"""SQLite-only behaviour: index use, WAL, sharing one file between processes, failure mapping."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fittracker.storage import InvalidQuery, StorageUnavailable, open_database
from fittracker.storage.sqlite import SqliteDatabase, translate_error

pytestmark = pytest.mark.timeout(60)


def open_sqlite(data_dir: pathlib.Path, name: str = "fit") -> SqliteDatabase:
    db = open_database("sqlite", name, data_dir=data_dir)
    assert isinstance(db, SqliteDatabase)
    return db


@pytest.fixture
async def sdb(tmp_path: pathlib.Path) -> AsyncIterator[SqliteDatabase]:
    db = open_sqlite(tmp_path)
    yield db
    await db.close()


async def test_pragmas_and_worker_thread(sdb: SqliteDatabase, tmp_path: pathlib.Path) -> None:
    await sdb.ping()
    assert await sdb._run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 1  # NORMAL
    assert await sdb._run(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) > 0
    thread = await sdb._run(lambda c: threading.current_thread())
    assert thread is not threading.current_thread()
    # WAL is a property of the file, so a separate plain connection sees it too.
    other = sqlite3.connect(tmp_path / "fit.db")
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


INDEXED: list[dict[str, Any]] = [
    {"email": "a@x.org"},
    {"email": {"$in": ["a@x.org", "b@x.org"]}},
    {"age": {"$gte": 30}},
    {"age": {"$lt": 30}, "name": "Ann"},
    {"age": None},
    {"city.name": "Oslo"},
    {"sets.reps": 8},
    {"_id": "abc"},
]


@pytest.mark.parametrize("flt", INDEXED, ids=[repr(f) for f in INDEXED])
async def test_queries_use_expression_indexes(sdb: SqliteDatabase, flt: dict[str, Any]) -> None:
    coll = sdb.collection("people")
    await coll.insert_many([{"email": f"{i}@x.org", "age": i, "city": {"name": "Oslo"}} for i in range(300)])
    await coll.create_index([("email", 1)], unique=True)
    await coll.create_index([("age", -1)])
    await coll.create_index([("city.name", 1), ("age", 1)])
    await coll.create_index([("sets.reps", 1)])
    plan = await coll.explain(flt)
    assert any("USING INDEX" in line for line in plan), plan
    assert "SCAN people" not in plan, plan


@pytest.mark.parametrize(
    ("flt", "seek"),
    [
        ({"city.name": "Oslo", "age": {"$gte": 10}}, "(<expr>=? AND <expr>>?)"),
        ({"city.name": "Oslo", "age": {"$gte": 10, "$lt": 20}}, "(<expr>=? AND <expr>>? AND <expr><?)"),
        ({"city.name": "Oslo", "age": {"$gte": 10}, "email": "a@x.org"}, "(<expr>=? AND <expr>>?)"),
    ],
)
async def test_compound_indexes_serve_every_column(
    sdb: SqliteDatabase, flt: dict[str, Any], seek: str
) -> None:
    """Equality on the first column AND a range on the second both use the index (the scalar
    branch of the compiled OR), not just the first column; an unindexed extra condition
    (``email``) does not spoil it."""
    coll = sdb.collection("people")
    await coll.insert_many([{"email": f"{i}@x.org", "age": i, "city": {"name": "Oslo"}} for i in range(300)])
    await coll.create_index([("city.name", 1), ("age", 1)])
    plan = await coll.explain(flt)
    used = [line for line in plan if line.startswith("SEARCH people USING INDEX ix_people_")]
    assert any(seek in line for line in used), plan
    assert "SCAN people" not in plan, plan
    with_arrays = {"email": "z@x.org", "age": [5, 15], "city": [{"name": "Oslo"}, {"name": "Rome"}]}
    await coll.insert_one(with_arrays)  # array values still match, through the other OR terms
    found = await coll.find({"city.name": "Oslo", "age": {"$gte": 10, "$lt": 12}})
    assert [d["email"] for d in found] == ["10@x.org", "11@x.org", "z@x.org"]


async def test_unindexed_query_scans_and_sort_can_use_index(sdb: SqliteDatabase) -> None:
    coll = sdb.collection("people")
    await coll.create_index([("age", 1)])
    assert "SCAN people" in await coll.explain({"email": "a@x.org"})
    assert await coll.explain({"email": {"$regex": "x"}}) != []
    plan = await coll.explain({}, sort=[("age", 1)])
    assert any("USING INDEX" in line for line in plan), plan


async def test_two_handles_on_one_file_share_writes(tmp_path: pathlib.Path) -> None:
    first, second = open_sqlite(tmp_path), open_sqlite(tmp_path)
    try:
        a, b = first.collection("counters"), second.collection("counters")
        await a.insert_one({"_id": "c", "n": 0})
        assert await b.find_one({"_id": "c"}) == {"_id": "c", "n": 0}
        await b.create_index([("n", 1)])
        updates = [coll.update_one({"_id": "c"}, {"$inc": {"n": 1}}) for coll in (a, b) for _ in range(25)]
        await asyncio.gather(*updates)
        assert await a.find_one({"_id": "c"}) == {"_id": "c", "n": 50}
        assert await b.count({"n": 50}) == 1
    finally:
        await first.close()
        await second.close()


WORKER = """
import asyncio, pathlib, sys
from fittracker.storage import open_database

async def main() -> None:
    db = open_database("sqlite", "fit", data_dir=pathlib.Path(sys.argv[1]))
    coll = db.collection("counters")
    for _ in range(int(sys.argv[2])):
        await coll.update_one({"_id": "c"}, {"$inc": {"n": 1}}, upsert=True)
    await db.close()

asyncio.run(main())
"""


async def test_increments_from_several_processes(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[2])}
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, str(tmp_path), "40", env=env)
        for _ in range(3)
    ]
    assert [await proc.wait() for proc in procs] == [0, 0, 0]
    db = open_sqlite(tmp_path)
    try:
        assert await db.collection("counters").find({}) == [{"_id": "c", "n": 120}]
    finally:
        await db.close()


def set_modes(directory: pathlib.Path, file_mode: int, dir_mode: int) -> None:
    if dir_mode & 0o200:
        directory.chmod(dir_mode)
    for file in directory.iterdir():
        file.chmod(file_mode)
    directory.chmod(dir_mode)


async def test_read_only_file_is_unavailable(tmp_path: pathlib.Path) -> None:
    db = open_sqlite(tmp_path)
    await db.collection("docs").insert_one({"_id": "a"})
    await db.close()
    set_modes(tmp_path, 0o444, 0o555)
    try:
        if os.access(tmp_path / "fit.db", os.W_OK):
            pytest.skip("running as root: chmod does not make the file read-only")
        db = open_sqlite(tmp_path)
        try:
            with pytest.raises(StorageUnavailable):
                await db.collection("docs").insert_one({"_id": "b"})
        finally:
            await db.close()
    finally:
        set_modes(tmp_path, 0o644, 0o755)


async def test_read_only_connection_is_unavailable(sdb: SqliteDatabase) -> None:
    # Works as root too: query_only makes SQLite report "attempt to write a readonly database".
    coll = sdb.collection("docs")
    await coll.insert_one({"_id": "a"})
    await sdb._run(lambda c: c.execute("PRAGMA query_only = 1"))
    with pytest.raises(StorageUnavailable, match="readonly"):
        await coll.update_one({"_id": "a"}, {"$set": {"x": 1}})
    assert await coll.find_one({"_id": "a"}) == {"_id": "a"}


async def test_full_database_is_unavailable(sdb: SqliteDatabase) -> None:
    coll = sdb.collection("docs")
    await coll.insert_one({"_id": "a"})
    # Cap the file at its current size: the next big write hits SQLITE_FULL.
    await sdb._run(
        lambda c: c.execute(f"PRAGMA max_page_count = {c.execute('PRAGMA page_count').fetchone()[0]}")
    )
    with pytest.raises(StorageUnavailable, match="full"):
        await coll.insert_many([{"blob": "x" * 10_000} for _ in range(20)])
    assert await coll.count() == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("attempt to write a readonly database"), "StorageUnavailable"),
        (sqlite3.OperationalError("disk I/O error"), "StorageUnavailable"),
        (sqlite3.OperationalError("database or disk is full"), "StorageUnavailable"),
        (sqlite3.OperationalError("database is locked"), "StorageUnavailable"),
        (sqlite3.IntegrityError("UNIQUE constraint failed: docs.id"), "DuplicateKeyError"),
        (sqlite3.OperationalError("no such column: x"), "StorageError"),
    ],
)
def test_error_translation(error: sqlite3.Error, expected: str) -> None:
    assert type(translate_error(error)).__name__ == expected


async def test_closed_database_refuses_work(tmp_path: pathlib.Path) -> None:
    db = open_sqlite(tmp_path)
    await db.collection("docs").insert_one({"_id": "a"})
    await db.close()
    await db.close()  # idempotent
    with pytest.raises(StorageUnavailable):
        await db.collection("docs").find({})


async def test_concurrent_inserts_reads_and_indexes(sdb: SqliteDatabase) -> None:
    """Regression: cursors freed outside the worker thread broke the connection under load."""
    coll = sdb.collection("busy")

    async def find_then_insert(i: int) -> None:
        await coll.find_one({"n": i})
        await coll.insert_one({"n": i})
        await coll.create_index([("n", 1)])

    for _ in range(20):
        await asyncio.gather(*(find_then_insert(i) for i in range(30)))
        await coll.delete_many({})
    assert await coll.count() == 0


# --- filters compiled once per shape ---------------------------------------------------------


async def test_remembered_shapes_take_each_calls_values(sdb: SqliteDatabase) -> None:
    coll = sdb.collection("shapes")
    await coll.insert_many(
        [
            {"_id": "a", "x": 1, "y": 1, "s": "1", "flag": True},
            {"_id": "b", "x": 1, "y": 2, "s": "2", "flag": False},
            {"_id": "c", "x": 2, "y": 2, "s": None},
        ]
    )

    async def ids(flt: dict[str, Any]) -> list[str]:
        return sorted(d["_id"] for d in await coll.find(flt))

    # Equal values in two slots first, then different ones: each slot keeps its own value.
    assert await ids({"x": 1, "y": 1}) == ["a"]
    assert await ids({"x": 1, "y": 2}) == ["b"]
    assert await ids({"x": 2, "y": 2}) == ["c"]
    # The kind of value is part of the shape: "1" is not 1, None matches null and missing.
    assert await ids({"s": "1"}) == ["a"]
    assert await ids({"s": 1}) == []
    assert await ids({"s": None}) == ["c"]
    assert await ids({"flag": True}) == ["a"] and await ids({"flag": False}) == ["b"]
    assert await ids({"x": {"$gte": 1, "$lt": 2}}) == ["a", "b"]
    assert await ids({"x": {"$gte": 2, "$lt": 3}}) == ["c"]
    assert await ids({"y": {"$ne": 2}}) == ["a"]
    assert await coll.count({"x": 1}) == 2 and await coll.count({"x": 2}) == 1
    assert (await coll.update_one({"_id": "c", "x": 2}, {"$set": {"x": 3}})) is not None
    assert await coll.delete_one({"_id": "c", "x": 3}) == 1
    assert len(coll._shapes) > 0  # the shapes above were remembered, not recompiled


@pytest.mark.parametrize(
    "bad",
    [{"x": float("nan")}, {"x": 2**70}, {"x": {"$gt": float("inf")}}, {"bad..path": 1}, {"$where": "1"}],
)
async def test_remembered_shapes_still_refuse_bad_filters(sdb: SqliteDatabase, bad: dict[str, Any]) -> None:
    coll = sdb.collection("shapes")
    await coll.find({"x": 1.5})  # the numeric shape of "x" is now remembered
    await coll.find({"x": {"$gt": 1.5}})
    with pytest.raises(InvalidQuery):
        await coll.find(bad)


async def test_remembered_update_shapes_still_check_each_calls_values(sdb: SqliteDatabase) -> None:
    coll = sdb.collection("updates")
    await coll.insert_one({"_id": "a", "n": 1, "tags": []})
    assert await coll.update_one({"_id": "a"}, {"$inc": {"n": 1}, "$push": {"tags": "x"}}) is not None
    bad_values: list[dict[str, dict[str, Any]]] = [
        {"$inc": {"n": "one"}, "$push": {"tags": "x"}},
        {"$inc": {"n": float("nan")}, "$push": {"tags": "x"}},
    ]
    for bad in bad_values:
        with pytest.raises(InvalidQuery):  # the same shape as the update above, a bad value
            await coll.update_one({"_id": "a"}, bad)
    with pytest.raises(InvalidQuery, match="conflicting"):
        await coll.update_one({"_id": "a"}, {"$set": {"meta": {}, "meta.k": 1}})
    with pytest.raises(InvalidQuery, match="conflicting"):  # refused again: never remembered
        await coll.update_one({"_id": "a"}, {"$set": {"meta": {}, "meta.k": 1}})
    assert await coll.find_one({"_id": "a"}) == {"_id": "a", "n": 2, "tags": ["x"]}


async def test_an_update_that_changes_nothing_is_not_counted(sdb: SqliteDatabase) -> None:
    coll = sdb.collection("noop")
    await coll.insert_many([{"_id": "a", "v": 1.5, "s": "é"}, {"_id": "b", "v": 2, "s": "x"}])
    assert await coll.update_many({}, {"$set": {"v": 1.5, "s": "é"}}) == 1  # only b changed
    assert await coll.update_many({}, {"$set": {"v": 1.5, "s": "é"}}) == 0


async def test_reading_a_collection_never_written_does_not_write(sdb: SqliteDatabase) -> None:
    # Reads must work on a read-only or full disk, so they do not create the table they read.
    await sdb._run(lambda c: c.execute("PRAGMA query_only = 1"))
    fresh = sdb.collection("never_written")
    assert await fresh.find({"a": 1}) == []
    assert await fresh.find_one({"_id": "x"}) is None
    assert await fresh.count() == 0
    await sdb._run(lambda c: c.execute("PRAGMA query_only = 0"))
    await fresh.insert_one({"_id": "x", "a": 1})
    assert await fresh.find({"a": 1}) == [{"_id": "x", "a": 1}]
