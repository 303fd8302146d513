"""Workout documents: one per workout, its sets embedded, so a workout is never half-written.

Concurrency: a new set is one atomic ``$push`` (guarded by status and the set cap), so
clients logging to the same workout at once lose nothing. Edits and deletions of sets are
read-modify-write guarded by ``version`` (optimistic concurrency): the write is conditioned
on the version that was read and retried on conflict. Every change bumps ``version``, which
the derived session documents use to ignore stale rewrites.

Statuses: ``in_progress`` → ``finished`` | ``discarded``. ``deleted`` is transient: it marks a
workout whose derived data is being removed just before the document itself goes.

Lists and counts never touch the (large) workout documents: ``workout_heads`` keeps one slim
document per workout (status, start) keyed for range scans by ``ustart = user_id|started_at``,
rewritten (versioned) after every change of the workout's status or start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fittracker import Conflict
from fittracker.http.pagination import after_cursor, decode_cursor, encode_cursor
from fittracker.ids import random_hex
from fittracker.storage import Collection, Database, Document, DuplicateKeyError

RETRIES = 50
LIVE_STATUSES = ("in_progress", "finished", "discarded")


def iso(moment: datetime) -> str:
    """UTC, fixed width: such strings sort like the instants they name."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def new_id() -> str:
    return random_hex()


class ConcurrentUpdate(Conflict):
    """The document kept changing under a read-modify-write (retries exhausted): 409, retry."""

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"{doc_id} is being changed by other requests; try again")


async def versioned_write(coll: Collection, doc_id: str, version: int, body: Document) -> None:
    """Store ``body`` as ``doc_id`` unless a write from a newer ``version`` already landed.

    Documents derived from a workout carry the workout version they came from (``src_version``),
    so a slow request finishing late cannot overwrite what a newer one wrote.
    """
    for _ in range(RETRIES):
        stored = await coll.update_one(
            {"_id": doc_id, "src_version": {"$lt": version}}, {"$set": {**body, "src_version": version}}
        )
        if stored is not None:
            return
        existing = await coll.find_one({"_id": doc_id})
        if existing is not None:
            if existing["src_version"] >= version:
                return
            continue
        try:
            await coll.insert_one({"_id": doc_id, **body, "src_version": version})
            return
        except DuplicateKeyError:
            continue
    raise ConcurrentUpdate(doc_id)


def ustart(user_id: str, started_at: str) -> str:
    return f"{user_id}|{started_at}"


class WorkoutStore:
    def __init__(self, db: Database) -> None:
        self.workouts: Collection = db.collection("workouts")
        self.heads: Collection = db.collection("workout_heads")

    async def create_indexes(self) -> None:
        await self.heads.create_index([("ustart", -1)])
        await self.workouts.create_index([("stale", 1)])

    @staticmethod
    def head_of(doc: Mapping[str, Any]) -> Document:
        return {
            "user_id": doc["user_id"],
            "ustart": ustart(doc["user_id"], doc["started_at"]),
            "started_at": doc["started_at"],
            "status": doc["status"],
        }

    async def _write_head(self, doc: Mapping[str, Any]) -> None:
        await versioned_write(self.heads, doc["_id"], int(doc["version"]), self.head_of(doc))

    async def create(self, user_id: str, fields: Mapping[str, Any], doc_id: str | None = None) -> Document:
        """Insert a new workout (``doc_id``: a chosen id; DuplicateKeyError when it exists)."""
        now = now_iso()
        doc: Document = {
            "_id": doc_id or new_id(),
            "user_id": user_id,
            "name": fields.get("name"),
            "notes": fields.get("notes"),
            "status": "in_progress",
            "started_at": fields.get("started_at") or now,
            "finished_at": None,
            "routine_id": fields.get("routine_id"),
            "day_index": fields.get("day_index"),
            "plan": fields.get("plan"),
            "sets": [],
            "set_count": 0,
            "achievements": [],
            "summary": None,
            "stale": True,  # until its head and week are written (see Logbook.repair)
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        await self.workouts.insert_one(doc)
        await self._write_head(doc)
        return doc

    async def get(self, user_id: str, workout_id: str) -> Document | None:
        """The user's workout; None for another user's (callers answer 404, never 403)."""
        return await self.workouts.find_one(
            {"_id": workout_id, "user_id": user_id, "status": {"$in": list(LIVE_STATUSES)}}
        )

    async def page(
        self,
        user_id: str,
        *,
        start: str | None,
        end: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Document], str | None]:
        """Workouts started in ``[start, end)``, newest first, and the next page's cursor."""
        clauses: list[Mapping[str, Any]] = [
            {"ustart": {"$gte": ustart(user_id, start or ""), "$lt": ustart(user_id, end or "~")}},
            {"status": status} if status else {"status": {"$in": list(LIVE_STATUSES)}},
        ]
        if cursor:
            started, workout_id = decode_cursor(cursor, 2)
            clauses.extend(
                after_cursor("ustart", "_id", encode_cursor(ustart(user_id, started), workout_id), True)
            )
        heads = await self.heads.find({"$and": clauses}, sort=[("ustart", -1), ("_id", -1)], limit=limit + 1)
        next_cursor = None
        if len(heads) > limit:
            heads = heads[:limit]
            next_cursor = encode_cursor(heads[-1]["started_at"], heads[-1]["_id"])
        found = {d["_id"]: d for d in await self.workouts.find({"_id": {"$in": [h["_id"] for h in heads]}})}
        return [found[h["_id"]] for h in heads if h["_id"] in found], next_cursor

    async def count_started(self, user_id: str, start: str, end: str, status: str | None = None) -> int:
        flt: dict[str, Any] = {"ustart": {"$gte": ustart(user_id, start), "$lt": ustart(user_id, end)}}
        flt["status"] = status if status else {"$in": list(LIVE_STATUSES)}
        return await self.heads.count(flt)

    async def push_set(
        self, user_id: str, workout_id: str, item: Document, max_sets: int, *, new_id_only: bool = False
    ) -> Document | None:
        """Append a set atomically; None when the workout is not open or is full (caller tells which),
        or with ``new_id_only`` when it already holds a set with ``item``'s id."""
        where: Document = {
            "_id": workout_id,
            "user_id": user_id,
            "status": "in_progress",
            "set_count": {"$lt": max_sets},
        }
        if new_id_only:
            where["sets.id"] = {"$ne": item["id"]}
        return await self.workouts.update_one(
            where,
            {
                "$push": {"sets": item},
                "$inc": {"version": 1, "set_count": 1},
                "$set": {"updated_at": now_iso(), "stale": True},
            },
        )

    async def modify(
        self, user_id: str, workout_id: str, change: Callable[[Document], Mapping[str, Any] | None]
    ) -> tuple[Document, Document] | None:
        """Read-modify-write under optimistic concurrency.

        ``change(doc)`` returns the fields to ``$set`` (or None for "nothing to do"; it may raise
        a problem error). Returns ``(before, after)``, or None when the workout is not the user's.
        """
        for _ in range(RETRIES):
            before = await self.get(user_id, workout_id)
            if before is None:
                return None
            fields = change(before)
            if fields is None:
                return before, before
            update = {
                "$set": {**fields, "version": before["version"] + 1, "updated_at": now_iso(), "stale": True}
            }
            after = await self.workouts.update_one({"_id": workout_id, "version": before["version"]}, update)
            if after is not None:
                if self.head_of(after) != self.head_of(before):
                    await self._write_head(after)
                return before, after
        raise ConcurrentUpdate(workout_id)

    async def add_achievements(self, workout_id: str, marks: list[Document]) -> None:
        if marks:
            await self.workouts.update_one({"_id": workout_id}, {"$push": {"achievements": {"$each": marks}}})

    async def drop_achievements(self, workout_id: str, set_ids: list[str]) -> None:
        """Forget what deleted or edited sets achieved (it is recomputed, not re-announced)."""
        for set_id in set_ids:
            await self.workouts.update_one(
                {"_id": workout_id}, {"$pull": {"achievements": {"set_id": set_id}}}
            )

    async def set_summary(self, workout_id: str, summary: Document) -> None:
        await self.workouts.update_one({"_id": workout_id}, {"$set": {"summary": summary}})

    async def mark_deleted(self, user_id: str, workout_id: str) -> Document | None:
        """Flag the workout as going away (bumping its version); None if not the user's."""
        doc = await self.workouts.update_one(
            {"_id": workout_id, "user_id": user_id, "status": {"$in": list(LIVE_STATUSES)}},
            {"$set": {"status": "deleted", "updated_at": now_iso(), "stale": True}, "$inc": {"version": 1}},
        )
        if doc is not None:
            await self._write_head(doc)  # stays as a tombstone: a late stale write cannot revive it
        return doc

    async def mark_fresh(self, workout_id: str, version: int) -> None:
        """Derived data now matches ``version`` (unless a newer change came in meanwhile)."""
        await self.workouts.update_one({"_id": workout_id, "version": version}, {"$set": {"stale": False}})

    async def stale(self, limit: int = 500) -> list[Document]:
        """Workouts changed whose derived data may not have been written (a crash in between)."""
        return await self.workouts.find({"stale": True}, limit=limit)

    async def write_head(self, doc: Mapping[str, Any]) -> None:
        await self._write_head(doc)

    async def remove(self, workout_id: str) -> None:
        await self.workouts.delete_one({"_id": workout_id})
