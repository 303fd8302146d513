"""MongoDB backend on PyMongo's async API (``AsyncMongoClient``, the successor of Motor).

MongoDB speaks the filter language natively, so this module mostly validates (with the same
rules as SQLite, from :mod:`.query`), keeps ``_id`` a uuid4-hex string instead of an ObjectId,
and maps PyMongo's exceptions onto the port's error types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
)
from pymongo.errors import (
    DuplicateKeyError as MongoDuplicateKeyError,
)

from . import query as q
from .base import (
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

_DUPLICATE_KEY = 11000
# Server codes that mean "this update cannot apply to that document" (bad path, wrong type...).
_BAD_UPDATE = frozenset({2, 9, 14, 28, 40, 52, 56, 57})
# Out of disk space, or the node cannot take writes right now.
_UNAVAILABLE = frozenset({14031, 10107, 13435, 11600, 11602, 189, 91})


@contextmanager
def _translated() -> Iterator[None]:
    """Re-raise PyMongo errors as the port's errors, keeping the original as the cause."""
    try:
        yield
    except MongoDuplicateKeyError as exc:
        raise DuplicateKeyError(str(exc)) from exc
    except ConnectionFailure as exc:  # includes server selection timeouts and AutoReconnect
        raise StorageUnavailable(str(exc)) from exc
    except BulkWriteError as exc:
        codes = {error.get("code") for error in exc.details.get("writeErrors", [])}
        raise (DuplicateKeyError if _DUPLICATE_KEY in codes else StorageError)(str(exc)) from exc
    except OperationFailure as exc:
        if exc.code == _DUPLICATE_KEY:
            raise DuplicateKeyError(str(exc)) from exc
        if exc.code in _BAD_UPDATE:
            raise InvalidQuery(str(exc)) from exc
        if exc.code in _UNAVAILABLE:
            raise StorageUnavailable(str(exc)) from exc
        raise StorageError(str(exc)) from exc
    except PyMongoError as exc:
        raise StorageError(str(exc)) from exc


def _filter(flt: Filter | None) -> dict[str, Any]:
    """Validate with the shared rules; None means "everything" (but [] or "" are errors)."""
    flt = {} if flt is None else flt
    q.check_filter(flt)
    return dict(flt)


def _sort(sort: Sort | None) -> list[tuple[str, int]] | None:
    checked = q.check_keys("sort", sort)
    return [(".".join(path), direction) for path, direction in checked] or None


class MongoCollection:
    """A MongoDB collection behind the port's :class:`~.base.Collection` API."""

    def __init__(self, collection: AsyncCollection[Document], name: str) -> None:
        self.name = name
        self._coll = collection

    async def insert_one(self, doc: Document) -> Document:
        q.check_document(doc)
        # A copy: PyMongo would otherwise write the generated _id into the caller's dict.
        stored = {"_id": doc.get("_id") or q.new_id(), **doc}
        with _translated():
            await self._coll.insert_one(stored)
        return stored

    async def insert_many(self, docs: Sequence[Document]) -> list[Document]:
        for doc in docs:
            q.check_document(doc)
        stored = [{"_id": doc.get("_id") or q.new_id(), **doc} for doc in docs]
        ids = [doc["_id"] for doc in stored]
        if len(set(ids)) != len(ids):
            raise DuplicateKeyError("insert_many: the batch repeats an _id")
        if not stored:
            return []
        try:
            with _translated():
                await self._coll.insert_many(stored, ordered=True)
        except StorageError as exc:
            # Without a replica-set transaction, undo the prefix an ordered insert already wrote
            # (best effort: a concurrent reader may briefly see it).
            cause = exc.__cause__
            if isinstance(cause, BulkWriteError):
                failed_at = min(error["index"] for error in cause.details.get("writeErrors", []))
                if failed_at:
                    with _translated():
                        await self._coll.delete_many({"_id": {"$in": ids[:failed_at]}})
            raise
        return stored

    async def find_one(self, filter: Filter | None = None, *, sort: Sort | None = None) -> Document | None:
        found = await self.find(filter, sort=sort, limit=1)
        return found[0] if found else None

    async def find(
        self, filter: Filter | None = None, *, sort: Sort | None = None, limit: int = 0, skip: int = 0
    ) -> list[Document]:
        flt = _filter(filter)
        q.check_paging(limit, skip)
        with _translated():
            cursor = self._coll.find(flt, sort=_sort(sort), limit=limit, skip=skip)
            return await cursor.to_list()

    async def count(self, filter: Filter | None = None) -> int:
        flt = _filter(filter)
        with _translated():
            return await self._coll.count_documents(flt)

    async def update_one(self, filter: Filter, update: Update, *, upsert: bool = False) -> Document | None:
        q.check_filter(filter)
        q.check_update(update)
        body = {op: dict(fields) for op, fields in update.items()}
        seed = q.upsert_seed(filter) if upsert else {}
        q.check_document(seed)  # an upsert must not create a non-string _id
        if upsert and "_id" not in seed and "_id" not in body.get("$setOnInsert", {}):
            # Otherwise the server would invent an ObjectId; the port promises string ids.
            body.setdefault("$setOnInsert", {})["_id"] = q.new_id()
        with _translated():
            return await self._coll.find_one_and_update(
                dict(filter), body, upsert=upsert, return_document=ReturnDocument.AFTER
            )

    async def update_many(self, filter: Filter, update: Update) -> int:
        q.check_filter(filter)
        q.check_update(update)
        body = {op: dict(fields) for op, fields in update.items() if op != "$setOnInsert"}
        if not body:
            return 0  # only $setOnInsert, which never applies without an upsert
        with _translated():
            result = await self._coll.update_many(dict(filter), body)
        return result.modified_count

    async def delete_one(self, filter: Filter) -> int:
        q.check_filter(filter)
        with _translated():
            result = await self._coll.delete_one(dict(filter))
        return result.deleted_count

    async def delete_many(self, filter: Filter) -> int:
        q.check_filter(filter)
        with _translated():
            result = await self._coll.delete_many(dict(filter))
        return result.deleted_count

    async def create_index(self, keys: IndexKeys, *, unique: bool = False) -> None:
        checked = q.check_keys("index", keys, allow_empty=False)
        spec = [(".".join(path), direction) for path, direction in checked]
        name = "_".join(f"{field}_{direction}" for field, direction in spec) + ("_unique" if unique else "")
        with _translated():
            # An explicit name lets a unique and a plain index on the same keys coexist, as on SQLite.
            await self._coll.create_index(spec, unique=unique, name=name)


class MongoDatabase:
    """One plug-in's MongoDB database ``fittracker_<name>``."""

    def __init__(self, name: str, url: str, *, client_options: dict[str, Any] | None = None) -> None:
        self.name = q.check_name("database", name)
        options: dict[str, Any] = {"tz_aware": True, "appname": f"fittracker-{name}"}
        if "serverselectiontimeoutms" not in url.lower():
            options["serverSelectionTimeoutMS"] = 5000  # fail health checks fast, not after 30 s
        options.update(client_options or {})
        # The client connects lazily, on the first operation.
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(url, **options)
        self._db = self._client[f"fittracker_{name}"]
        self._collections: dict[str, MongoCollection] = {}
        self._closed = False

    def collection(self, name: str) -> MongoCollection:
        if name not in self._collections:
            q.check_name("collection", name)
            self._collections[name] = MongoCollection(self._db[name], name)
        return self._collections[name]

    async def ping(self) -> None:
        if self._closed:
            raise StorageUnavailable(f"database {self.name!r} is closed")
        with _translated():
            await self._db.command("ping")

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()
