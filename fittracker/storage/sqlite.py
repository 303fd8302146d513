"""SQLite backend: one WAL-mode file per plug-in database, each collection a table of JSON docs.

Filters compile to SQL over ``json_extract``. Field paths are inlined (they passed the strict
segment check in :mod:`.query`, so they cannot carry quotes) because the planner only uses an
expression index when the query repeats the indexed expression literally; every *value* is a
bound parameter. All sqlite3 calls run on one worker thread per database, so the event loop
never blocks and the connection is only ever used from the thread that opened it.
"""

# S608: table names and JSON paths are spliced into SQL only after passing query.SEGMENT
# (letters, digits, '_'); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import pathlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from fittracker.sqlite_thread import SqliteThread, connect_wal, transaction

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

T = TypeVar("T")
Sql = tuple[str, list[Any]]
# A predicate renders SQL for one value, given SQL expressions for that value and its JSON type.
Pred = Callable[[str, str], Sql]

_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_UNAVAILABLE = ("readonly", "disk i/o error", "disk is full", "unable to open", "is locked", "not a database")


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        out: Exception = translate_error(exc)
    elif isinstance(exc, OSError):  # e.g. the data directory cannot be created
        out = StorageUnavailable(str(exc))
    else:
        return exc
    out.__cause__ = exc
    return out


def translate_error(exc: sqlite3.Error) -> StorageError:
    """Map a sqlite3 error onto the port's error types."""
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in message:
        return DuplicateKeyError(message)
    if any(marker in message.lower() for marker in _UNAVAILABLE):
        return StorageUnavailable(message)
    return StorageError(message)


def _dumps(doc: Document) -> str:
    try:
        return orjson.dumps(doc).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidQuery(f"document cannot be stored as JSON: {exc}") from None


def _regexp(pattern: str, value: object) -> bool:
    # Backs SQL's ``x REGEXP pattern``; ``re`` caches compiled patterns itself.
    return isinstance(value, str) and re.search(pattern, value) is not None


# --- filter compilation --------------------------------------------------------------------


def _jpath(segments: Sequence[str]) -> str:
    return "'$." + ".".join(segments) + "'"


def _column(segments: Sequence[str]) -> str:
    """The SQL expression for a top-level path; ``_id`` lives in the primary-key column."""
    return "id" if list(segments) == ["_id"] else f"json_extract(doc, {_jpath(segments)})"


def _eq_pred(value: Any) -> Pred:
    def pred(x: str, t: str) -> Sql:
        if value is None:  # like Mongo, null also matches a missing field
            return f"{x} IS NULL", []
        if isinstance(value, bool):  # json_extract turns true into 1: compare the JSON type
            return f"{t} = '{'true' if value else 'false'}'", []
        if q.is_number(value):
            return f"({x} = ? AND {t} IN ('integer', 'real'))", [value]
        if isinstance(value, str):
            return f"({x} = ? AND {t} = 'text')", [value]
        kind = "array" if isinstance(value, list) else "object"
        return f"({x} = ? AND {t} = '{kind}')", [_dumps(value)]

    return pred


def _join(separator: str, parts: list[Sql], empty: str = "1") -> Sql:
    """Combine SQL fragments, keeping their parameters in the order the text uses them."""
    return "(" + (separator.join(sql for sql, _ in parts) or empty) + ")", [v for _, ps in parts for v in ps]


def _pred(op: str, arg: Any, ops: Mapping[str, Any]) -> Pred:
    if op == "$eq":
        return _eq_pred(arg)
    if op in _RANGE_SQL:
        # Mongo only compares within a type ("type bracketing"); SQLite would compare across.
        kinds = "('integer', 'real')" if q.is_number(arg) else "('text')"
        return lambda x, t: (f"({x} {_RANGE_SQL[op]} ? AND {t} IN {kinds})", [arg])
    if op == "$in":
        preds = [_eq_pred(v) for v in arg]
        return lambda x, t: _join(" OR ", [p(x, t) for p in preds], empty="0")
    if op == "$exists":
        return lambda x, t: (f"{t} IS NOT NULL", [])
    pattern = q.regex_pattern(arg, ops.get("$options", ""))
    return lambda x, t: (f"({t} = 'text' AND {x} REGEXP ?)", [pattern])


# A condition on one path: (the test of its scalar value, the tests that some element of an
# array on the path, or on a parent path, passes; none when the path cannot hold an array).
Split = tuple[Sql, list[Sql]]


def _either(split: Split) -> Sql:
    scalar, arrays = split
    return _join(" OR ", [scalar, *arrays]) if arrays else scalar


def _any(segments: list[str], pred: Pred, aliases: Iterator[int], src: str = "doc") -> Split:
    """SQL true when any value the path reaches satisfies ``pred`` (Mongo's array semantics)."""
    if src == "doc" and segments == ["_id"]:
        return pred("id", "'text'"), []
    path = _jpath(segments)
    scalar = pred(f"json_extract({src}, {path})", f"json_type({src}, {path})")
    # Each array branch starts with a json_type test that the partial indexes made by
    # create_index answer, so the whole OR stays indexable (MULTI-INDEX OR).
    alias = f"j{next(aliases)}"
    inner, params = pred(f"{alias}.value", f"{alias}.type")
    each = f"SELECT 1 FROM json_each({src}, {path}) AS {alias} WHERE {inner}"
    arrays = [(f"(json_type({src}, {path}) = 'array' AND EXISTS ({each}))", params)]
    for i in range(1, len(segments)):
        prefix, alias = _jpath(segments[:i]), f"j{next(aliases)}"
        inner, params = _either(_any(segments[i:], pred, aliases, f"{alias}.value"))
        each = (
            f"SELECT 1 FROM json_each({src}, {prefix}) AS {alias} WHERE {alias}.type = 'object' AND {inner}"
        )
        arrays.append((f"(json_type({src}, {prefix}) = 'array' AND EXISTS ({each}))", params))
    return scalar, arrays


def _expand(splits: list[Split]) -> Sql:
    """The AND of the conditions, as an OR whose first term tests scalars only.

    ``(s1 OR a1) AND (s2 OR a2)`` equals ``(s1 AND s2) OR (a1 AND (s2 OR a2)) OR (a2 AND (s1 OR a1))``
    (a row failing ``s1 AND s2`` fails some ``sj``, so it needs ``aj`` and the others). Written
    this way the first term can use a compound index over all the fields (equality on the first,
    a range on the next...), and every other term starts with one array test that the small
    partial indexes answer; as a plain AND of ORs, SQLite could use only one column of an index.
    """
    scalars = _join(" AND ", [scalar for scalar, _ in splits])
    terms = [scalars]
    for j, (_, arrays) in enumerate(splits):
        others = [_either(split) for i, split in enumerate(splits) if i != j]
        terms += [_join(" AND ", [branch, *others]) for branch in arrays]
    return _join(" OR ", terms) if len(terms) > 1 else scalars


_NEGATIONS = {"$ne": "$eq", "$nin": "$in"}
_ARRAY_PATH = re.compile(r"json_type\(doc, '\$\.([A-Za-z0-9_.]+)'\)")


def _field(segments: list[str], ops: Mapping[str, Any], aliases: Iterator[int]) -> list[Split]:
    parts: list[Split] = []
    for op, arg in ops.items():
        if op in _NEGATIONS or op == "$not" or (op == "$exists" and not arg):
            # Negations hold for missing fields too; COALESCE turns SQL's NULL into "no match".
            pos = {"$exists": True} if op == "$exists" else arg if op == "$not" else {_NEGATIONS[op]: arg}
            sql, params = _join(" AND ", [_either(s) for s in _field(segments, pos, aliases)])
            parts.append(((f"NOT COALESCE({sql}, 0)", params), []))
        elif op != "$options":  # $options is read together with $regex
            parts.append(_any(segments, _pred(op, arg, ops), aliases))
    return parts


def compile_filter(
    flt: Filter, aliases: Iterator[int] | None = None, indexed: frozenset[str] = frozenset()
) -> Sql:
    """Translate a validated filter into a WHERE clause and its parameters.

    ``indexed`` names the paths whose array branches have partial indexes (see
    :meth:`SqliteCollection.create_index`): conditions on them are combined by :func:`_expand`;
    any other condition is ANDed as it is (an OR term the planner cannot index would make it
    scan the table for the whole OR).
    """
    aliases = aliases if aliases is not None else itertools.count()
    fixed: list[Sql] = []
    open_: list[Split] = []
    for key, cond in flt.items():
        if key in ("$and", "$or"):
            subs = [compile_filter(sub, aliases, indexed) for sub in cond]
            fixed.append(_join(f" {key[1:].upper()} ", subs))
            continue
        segments = key.split(".")
        ops = cond if q.is_operator_dict(cond) else {"$eq": cond}
        covered = all(".".join(segments[:i]) in indexed for i in range(1, len(segments) + 1))
        for split in _field(segments, ops, aliases):
            if covered and split[1]:
                open_.append(split)
            else:
                fixed.append(_either(split))
    return _join(" AND ", [*fixed, _expand(open_)] if open_ else fixed)


# --- compiled filters, remembered by shape -----------------------------------------------------
# Most filters are a few fields compared with plain values ({"_id": x, "version": 3},
# {"ustart": {"$gte": a, "$lt": b}}). Their SQL depends only on the field names, the operators
# and the kinds of values, so it is compiled once per shape and the values are slotted in.

_SLOT_OPS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
Shape = tuple[Any, ...]


def _slot_kind(value: Any) -> Any:
    """ "s"/"n" for a value passed as a parameter, the value itself for SQL literals; None: unsure."""
    if value is None or isinstance(value, bool):
        return ("literal", value)
    if isinstance(value, str):
        return "s"
    if isinstance(value, int):
        return "n" if q.INT64_MIN <= value <= q.INT64_MAX else None
    if isinstance(value, float):
        return "n" if math.isfinite(value) else None
    return None


def filter_shape(flt: Mapping[str, Any]) -> tuple[Shape, list[Any]] | None:
    """The filter's shape and its parameter values in slot order; None for other filters."""
    shape: list[Any] = []
    values: list[Any] = []
    for key, cond in flt.items():
        if not isinstance(key, str) or key.startswith("$"):
            return None
        pairs = cond.items() if type(cond) is dict else (("$eq", cond),)
        ops = []
        for op, arg in pairs:
            kind = _slot_kind(arg)
            if op not in _SLOT_OPS or kind is None:
                return None
            ops.append((op, kind))
            if kind in ("s", "n"):
                values.append(arg)
        shape.append((key, type(cond) is dict, tuple(ops)))
    return tuple(shape), values


def _template(flt: Mapping[str, Any], shape: Shape, indexed: frozenset[str]) -> tuple[str, list[int]] | None:
    """The SQL of ``shape`` and, per parameter, the slot whose value it takes."""
    sentinels: dict[Any, int] = {}
    probe: dict[str, Any] = {}
    for key, is_ops, ops in shape:
        args = {}
        for op, kind in ops:
            if kind in ("s", "n"):
                slot = len(sentinels)
                arg: Any = f"\x00slot{slot}" if kind == "s" else (1 << 62) + slot
                sentinels[(kind, arg)] = slot
            else:
                arg = kind[1]
            args[op] = arg
        probe[key] = args if is_ops else args["$eq"]
    sql, params = compile_filter(probe, indexed=indexed)
    slots = [sentinels.get(("s" if isinstance(param, str) else "n", param)) for param in params]
    if any(slot is None for slot in slots):
        return None  # a parameter that is not one of the values: not a plain shape after all
    return sql, [slot for slot in slots if slot is not None]


# Work small enough to run on the event loop when the database's thread is idle: inserts of a
# few documents, and reads and writes of one document by primary key.
INLINE_ROWS = 16


def _by_id(flt: Filter | None) -> bool:
    return isinstance(flt, dict) and isinstance(flt.get("_id"), str)


class SqliteCollection:
    """A table ``(id TEXT PRIMARY KEY, doc TEXT NOT NULL)`` holding one JSON document per row."""

    def __init__(self, db: SqliteDatabase, name: str) -> None:
        self.name = name
        self._db = db
        self._table = f'"{name}"'
        self._insert = f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)"
        self._delete_sql = f"DELETE FROM {self._table} WHERE id IN"
        self._array_paths: frozenset[str] | None = None
        self._shapes: dict[tuple[Shape, frozenset[str]], tuple[str, list[int]]] = {}

    async def _run(
        self, work: Callable[[sqlite3.Connection], T], *, write: bool = False, inline: bool = False
    ) -> T:
        def wrapped(conn: sqlite3.Connection) -> T:
            if not write:
                return work(self._db._readable(conn, self.name))
            self._db._ensure_table(conn, self.name)
            with transaction(conn):
                return work(conn)

        return await self._db._run(wrapped, write=write, inline=inline)

    async def _indexed_paths(self) -> frozenset[str]:
        """Paths with an array partial index (read from the schema once; create_index resets)."""
        if self._array_paths is None:
            sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
            rows = await self._run(lambda conn: conn.execute(sql, (self.name,)).fetchall())
            found = {m for (text,) in rows if "'array'" in text for m in _ARRAY_PATH.findall(text)}
            self._array_paths = frozenset(found)
        return self._array_paths

    def _select(
        self,
        flt: Filter | None,
        columns: str,
        sort: Sort | None = None,
        limit: int = 0,
        skip: int = 0,
        *,
        indexed: frozenset[str] = frozenset(),
    ) -> Sql:
        flt = {} if flt is None else flt  # None means everything; [] or "" are errors
        q.check_paging(limit, skip)
        where, params = self._where(flt, indexed)
        sql = f"SELECT {columns} FROM {self._table} WHERE {where}"
        keys = q.check_keys("sort", sort)
        if keys:
            # rowid breaks ties so that equal keys come back in insertion order.
            sql += " ORDER BY " + ", ".join(f"{_column(p)} {'ASC' if d == 1 else 'DESC'}" for p, d in keys)
            sql += ", rowid"
        if limit or skip:
            sql += " LIMIT ? OFFSET ?"
            params += [limit or -1, skip]
        return sql, params

    def _where(self, flt: Filter, indexed: frozenset[str]) -> Sql:
        """The WHERE clause of a filter: remembered per shape, else validated and compiled."""
        found = filter_shape(flt) if isinstance(flt, dict) else None
        if found is None:
            q.check_filter(flt)
            return compile_filter(flt, indexed=indexed)
        shape, values = found
        template = self._shapes.get((shape, indexed))
        if template is None:
            q.check_filter(flt)  # field names are checked once per shape
            made = _template(flt, shape, indexed)
            if made is None:
                return compile_filter(flt, indexed=indexed)
            template = self._shapes[(shape, indexed)] = made
        sql, slots = template
        return sql, [values[slot] for slot in slots]

    async def insert_one(self, doc: Document) -> Document:
        return (await self.insert_many([doc]))[0]

    async def insert_many(self, docs: Sequence[Document]) -> list[Document]:
        for doc in docs:
            q.check_document(doc)
        stored = [{"_id": doc.get("_id") or q.new_id(), **doc} for doc in docs]
        rows = [(doc["_id"], _dumps(doc)) for doc in stored]
        # Cursors never leave the thread that ran them: freeing one elsewhere corrupts the connection.
        small = len(rows) <= INLINE_ROWS
        await self._run(lambda conn: conn.executemany(self._insert, rows).close(), write=True, inline=small)
        return stored

    async def find_one(self, filter: Filter | None = None, *, sort: Sort | None = None) -> Document | None:
        found = await self.find(filter, sort=sort, limit=1)
        return found[0] if found else None

    async def find(
        self, filter: Filter | None = None, *, sort: Sort | None = None, limit: int = 0, skip: int = 0
    ) -> list[Document]:
        sql, params = self._select(filter, "doc", sort, limit, skip, indexed=await self._indexed_paths())
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall(), inline=_by_id(filter))
        return [orjson.loads(row[0]) for row in rows]

    async def count(self, filter: Filter | None = None) -> int:
        sql, params = self._select(filter, "COUNT(*)", indexed=await self._indexed_paths())
        row = await self._run(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])

    async def explain(self, filter: Filter | None = None, *, sort: Sort | None = None) -> list[str]:
        """SQLite's EXPLAIN QUERY PLAN lines for ``find(filter, sort=sort)`` (for tests/tuning)."""
        sql, params = self._select(filter, "doc", sort, indexed=await self._indexed_paths())
        rows = await self._run(lambda conn: conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        return [str(row[3]) for row in rows]

    async def update_one(self, filter: Filter, update: Update, *, upsert: bool = False) -> Document | None:
        return (await self._update(filter, update, limit=1, upsert=upsert))[0]

    async def update_many(self, filter: Filter, update: Update) -> int:
        return (await self._update(filter, update, limit=0, upsert=False))[1]

    async def _update(
        self, flt: Filter, update: Update, limit: int, upsert: bool
    ) -> tuple[Document | None, int]:
        """Read-modify-write in one IMMEDIATE transaction; returns (last doc after, modified)."""
        if flt is None:  # writes need an explicit filter: None is not "everything" here
            raise InvalidQuery("a filter must be an object")
        q.check_update(update)
        sql, params = self._select(flt, "id, doc", limit=limit, indexed=await self._indexed_paths())

        def work(conn: sqlite3.Connection) -> tuple[Document | None, int]:
            after: Document | None = None
            changed = []
            for doc_id, text in conn.execute(sql, params).fetchall():
                after = q.apply_update(orjson.loads(text), update, in_place=True)
                stored = _dumps(after)
                # Like Mongo's modified_count, no-op updates do not count. The stored text came
                # from _dumps too: an unchanged document serialises to the very same text.
                if stored != text:
                    changed.append((stored, doc_id))
            conn.executemany(f"UPDATE {self._table} SET doc = ? WHERE id = ?", changed)
            if after is None and upsert:
                seeded = q.apply_update(q.upsert_seed(flt), update, inserting=True)
                after = {"_id": seeded.get("_id") or q.new_id(), **seeded}
                q.check_document(after)
                conn.execute(self._insert, (after["_id"], _dumps(after)))
            return after, len(changed)

        return await self._run(work, write=True, inline=limit == 1 and _by_id(flt))

    async def delete_one(self, filter: Filter) -> int:
        return await self._delete(filter, limit=1)

    async def delete_many(self, filter: Filter) -> int:
        return await self._delete(filter, limit=0)

    async def _delete(self, flt: Filter, *, limit: int) -> int:
        if flt is None:  # writes need an explicit filter: None is not "everything" here
            raise InvalidQuery("a filter must be an object")
        sql, params = self._select(flt, "id", limit=limit, indexed=await self._indexed_paths())
        return await self._run(
            lambda conn: conn.execute(f"{self._delete_sql} ({sql})", params).rowcount,
            write=True,
            inline=limit == 1 and _by_id(flt),
        )

    async def create_index(self, keys: IndexKeys, *, unique: bool = False) -> None:
        checked = q.check_keys("index", keys, allow_empty=False)
        columns = ", ".join(f"{_column(p)} {'ASC' if d == 1 else 'DESC'}" for p, d in checked)
        index = f"ix_{self.name}_{_digest(checked, unique)}"
        kind = "UNIQUE INDEX" if unique else "INDEX"
        statements = [f'CREATE {kind} IF NOT EXISTS "{index}" ON {self._table} ({columns})']
        # Small partial indexes over rows where a path (or a parent) holds an array keep the
        # array-element branches of a filter on that path indexable too.
        prefixes = {tuple(p[:i]) for p, _ in checked if p != ["_id"] for i in range(1, len(p) + 1)}
        for prefix in sorted(prefixes):
            expr = f"json_type(doc, {_jpath(prefix)})"
            statements.append(
                f'CREATE INDEX IF NOT EXISTS "ixa_{self.name}_{_digest(prefix, False)}" '
                f"ON {self._table} ({expr}) WHERE {expr} = 'array'"
            )

        def work(conn: sqlite3.Connection) -> None:
            for statement in statements:
                conn.execute(statement).close()

        await self._run(work, write=True)
        self._array_paths = None  # read the new partial indexes on the next query


def _digest(keys: object, unique: bool) -> str:
    return hashlib.blake2b(repr((keys, unique)).encode(), digest_size=6).hexdigest()


_CREATE_TABLE = 'CREATE TABLE IF NOT EXISTS "{name}" (id TEXT PRIMARY KEY, doc TEXT NOT NULL)'


class SqliteDatabase:
    """One plug-in's SQLite file; open it with :func:`fittracker.storage.open_database`."""

    def __init__(self, name: str, path: pathlib.Path, *, busy_timeout: float = 10.0) -> None:
        self.name = q.check_name("database", name)
        self.path = path
        self._busy_ms = int(busy_timeout * 1000)
        # One thread: sqlite3 connections are single-threaded, and it serialises (and batches) writes.
        self._thread = SqliteThread(f"sqlite-{name}", self._connection, _translate)
        self._conn: sqlite3.Connection | None = None
        self._tables: set[str] = set()
        self._empty: sqlite3.Connection | None = None  # see ``_readable``
        self._collections: dict[str, SqliteCollection] = {}
        self._closed = False

    def collection(self, name: str) -> SqliteCollection:
        if name not in self._collections:
            self._collections[name] = SqliteCollection(self, q.check_name("collection", name))
        return self._collections[name]

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._thread.shutdown(self._disconnect)

    async def _run(
        self, work: Callable[[sqlite3.Connection], T], *, write: bool = False, inline: bool = False
    ) -> T:
        if self._closed:
            raise StorageUnavailable(f"database {self.name!r} is closed")
        return await self._thread.run(lambda: work(self._connection()), write=write, inline=inline)

    # The methods below run on the database's thread only.

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        conn = connect_wal(self.path, self._busy_ms / 1000)  # its busy timeout is ours
        conn.create_function("regexp", 2, _regexp, deterministic=True)
        return conn

    def _ensure_table(self, conn: sqlite3.Connection, name: str) -> None:
        if name not in self._tables:
            conn.execute(_CREATE_TABLE.format(name=name))
            self._tables.add(name)

    def _readable(self, conn: sqlite3.Connection, name: str) -> sqlite3.Connection:
        """Where to read ``name``: our file, or, while the table does not exist yet, an empty
        in-memory twin. Creating it here would make a read a write, and reads must keep
        working when the disk is full or read-only."""
        if name in self._tables:
            return conn
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone():
            self._tables.add(name)
            return conn
        if self._empty is None:
            self._empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._empty.create_function("regexp", 2, _regexp, deterministic=True)
        self._empty.execute(_CREATE_TABLE.format(name=name))
        return self._empty

    def _disconnect(self) -> None:
        if self._empty is not None:
            self._empty.close()
            self._empty = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):  # best effort; closing matters more
                conn.execute("PRAGMA optimize")
            conn.close()
