"""The storage port: one small async document API, two backends.

Documents are JSON-native dicts (str, int, float, bool, None, list, dict). Every document has
a string ``_id``; ``insert_one`` generates one (uuid4 hex) when it is missing. Object keys may
not start with ``$`` nor hold ``.`` or NUL, integers fit in 64 bits, floats are finite, and
objects and arrays nest at most 32 levels deep: anything else raises :class:`InvalidQuery`,
in a document as in a filter's or an update's values.

Filters are a documented subset of MongoDB's query language; anything else raises
:class:`InvalidQuery` (so user input can never smuggle in ``$where`` and friends):

- equality ``{"a.b": v}`` (a dotted path; on an array field it matches any element),
- comparison ``$eq $ne $gt $gte $lt $lte``, membership ``$in $nin``, ``$exists``,
- ``$regex`` (Python ``re`` syntax) with ``$options: "i"``,
- logic ``$and $or`` (lists of filters) and ``$not`` (wrapping an operator dict).

Updates support ``$set $unset $inc $push $pull $addToSet`` and, with ``upsert=True``,
``$setOnInsert``. Single-document writes are atomic on both backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Document = dict[str, Any]
Filter = Mapping[str, Any]
Update = Mapping[str, Mapping[str, Any]]
Sort = Sequence[tuple[str, int]]
IndexKeys = Sequence[tuple[str, int]]


class StorageError(Exception):
    """Base class for storage failures."""


class DuplicateKeyError(StorageError):
    """A unique index (or ``_id``) already holds that value."""


class InvalidQuery(StorageError):
    """A filter or update uses an operator or shape outside the supported subset."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached or cannot write (read-only or full disk)."""


class Collection(Protocol):
    """A named set of documents inside one plug-in's database."""

    name: str

    async def insert_one(self, doc: Document) -> Document:
        """Store ``doc`` and return it with its ``_id``; DuplicateKeyError on a unique clash."""
        ...

    async def insert_many(self, docs: Sequence[Document]) -> list[Document]:
        """Store several documents atomically (all or none)."""
        ...

    async def find_one(self, filter: Filter | None = None, *, sort: Sort | None = None) -> Document | None:
        """The first matching document, or None."""
        ...

    async def find(
        self,
        filter: Filter | None = None,
        *,
        sort: Sort | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> list[Document]:
        """Matching documents; ``limit=0`` means no limit. Sort is ``[(field, 1 | -1), ...]``."""
        ...

    async def count(self, filter: Filter | None = None) -> int:
        """How many documents match."""
        ...

    async def update_one(self, filter: Filter, update: Update, *, upsert: bool = False) -> Document | None:
        """Apply ``update`` to the first match and return the document AFTER the update.

        Returns None when nothing matched and ``upsert`` is false.
        """
        ...

    async def update_many(self, filter: Filter, update: Update) -> int:
        """Apply ``update`` to every match; returns how many were modified."""
        ...

    async def delete_one(self, filter: Filter) -> int:
        """Delete the first match; returns 0 or 1."""
        ...

    async def delete_many(self, filter: Filter) -> int:
        """Delete every match; returns how many."""
        ...

    async def create_index(self, keys: IndexKeys, *, unique: bool = False) -> None:
        """Create an index (idempotent). ``keys`` is ``[(field, 1 | -1), ...]``."""
        ...


class Database(Protocol):
    """One plug-in's own database ("database per service")."""

    name: str

    def collection(self, name: str) -> Collection:
        """The collection called ``name`` (created on first use)."""
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable if the backend cannot serve requests."""
        ...

    async def close(self) -> None:
        """Release connections; the database is unusable afterwards."""
        ...
