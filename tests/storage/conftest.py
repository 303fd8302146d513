"""Fixtures that run the storage conformance suite against every available backend.

SQLite always runs (a real file under ``tmp_path``). MongoDB runs only when
``FITTRACKER_TEST_MONGO_URL`` points at a server; each test gets its own database, dropped after.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from fittracker.storage import Database, open_database

MONGO_URL_ENV = "FITTRACKER_TEST_MONGO_URL"

OpenDb = Callable[[], Database]


@pytest.fixture(params=["sqlite", "mongo"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "mongo" and not os.environ.get(MONGO_URL_ENV):
        pytest.skip(f"{MONGO_URL_ENV} is not set")
    return name


@pytest.fixture
async def open_db(backend: str, tmp_path: pathlib.Path) -> AsyncIterator[OpenDb]:
    """A factory that opens the SAME database again on each call (to test reopen / sharing)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    url = os.environ.get(MONGO_URL_ENV, "")
    opened: list[Database] = []

    def factory() -> Database:
        db = open_database(backend, name, data_dir=tmp_path, mongo_url=url)
        opened.append(db)
        return db

    yield factory
    for db in opened:
        await db.close()
    if backend == "mongo":
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
        try:
            await client.drop_database(f"fittracker_{name}")
        finally:
            await client.close()


@pytest.fixture
def db(open_db: OpenDb) -> Database:
    return open_db()
