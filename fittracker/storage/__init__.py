"""The storage port (see :mod:`.base`) and a factory for its two backends.

Plug-ins only see :class:`Database` / :class:`Collection`; which backend serves them is decided
by configuration through :func:`open_database`.
"""

from __future__ import annotations

import pathlib

from .base import (
    Collection,
    Database,
    Document,
    DuplicateKeyError,
    Filter,
    IndexKeys,
    InvalidQuery,
    Sort,
    StorageError,
    StorageUnavailable,
    Update,
)
from .query import check_name

__all__ = [
    "Collection",
    "Database",
    "Document",
    "DuplicateKeyError",
    "Filter",
    "IndexKeys",
    "InvalidQuery",
    "Sort",
    "StorageError",
    "StorageUnavailable",
    "Update",
    "open_database",
]

BACKENDS = ("sqlite", "mongo")


def open_database(backend: str, name: str, *, data_dir: pathlib.Path, mongo_url: str = "") -> Database:
    """Return plug-in ``name``'s own database on ``backend`` ("sqlite" or "mongo").

    SQLite uses the file ``data_dir / f"{name}.db"``; MongoDB the database ``fittracker_{name}``
    on ``mongo_url``. Nothing is connected yet: the first operation (or ``ping``) does that.
    """
    check_name("database", name)
    if backend == "sqlite":
        from .sqlite import SqliteDatabase

        return SqliteDatabase(name, pathlib.Path(data_dir) / f"{name}.db")
    if backend == "mongo":
        if not mongo_url:
            raise ValueError("the mongo storage backend needs a mongo_url")
        from .mongo import MongoDatabase

        return MongoDatabase(name, mongo_url)
    raise ValueError(f"unknown storage backend {backend!r}; expected one of {', '.join(BACKENDS)}")
