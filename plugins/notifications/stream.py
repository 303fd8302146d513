"""Each user's stream: numbered, stored messages that a reconnecting client can replay.

Collection ``notifications`` holds the stream. Inbox items are
``{_id, user_id, seq, category, type, title, body, data, created_at, read_at, inbox: true}``;
live-only entries (the user's own progress, read-state changes) have ``inbox: false`` and
never show in the inbox. ``seq`` is per user and increasing: a counter document per user in
``stream_heads`` is bumped with an atomic ``$inc`` (so every worker and host agrees), then the
entry is stored under it. A crash between the two leaves a hole, which readers skip.

Retention keeps the last ``retain_per_user`` entries of each user and nothing older than
``retain_days``; both cut a prefix of the stream, so "can a client resume after N?" is just
"is the oldest retained seq at most N + 1?".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fittracker import PluginContext
from fittracker.storage import Collection, Database, Document, DuplicateKeyError

Message = dict[str, Any]
CREATED = "notification.created"
READ = "notification.read"
PAGE = 200
PRUNE_EVERY = 25  # prune a user's stream on every 25th entry: cheap, and bounded between prunes


def iso(moment: datetime) -> str:
    """The plug-in's stored form of a time: UTC, milliseconds (sorts as text)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def public_item(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An inbox item as the API shows it."""
    return {
        "id": doc["_id"],
        "stream_id": str(doc["seq"]),
        "category": doc["category"],
        "type": doc["type"],
        "title": doc["title"],
        "body": doc["body"],
        "data": doc.get("data") or {},
        "created_at": doc["created_at"],
        "read_at": doc.get("read_at"),
    }


def message_of(doc: Mapping[str, Any]) -> Message:
    """The WebSocket message of a stream entry: ``{id, type, time, data}``."""
    kind = doc.get("kind", "notification")
    data = doc.get("payload") if kind == READ else public_item(doc)
    return {"id": str(doc["seq"]), "type": kind, "time": doc["created_at"], "data": data or {}}


def control(type_: str, data: Mapping[str, Any]) -> Message:
    """A message outside the stream (no id): ready, recovery, pong, error."""
    return {"id": None, "type": type_, "time": now_iso(), "data": dict(data)}


class Stream:
    def __init__(self, ctx: PluginContext, db: Database) -> None:
        self.ctx = ctx
        self.entries: Collection = db.collection("notifications")
        self.heads: Collection = db.collection("stream_heads")
        self.retain_per_user = int(ctx.settings.get("retain_per_user", 1000))
        self.retain_days = float(ctx.settings.get("retain_days", 30))

    async def create_indexes(self) -> None:
        await self.entries.create_index([("user_id", 1), ("seq", 1)], unique=True)
        await self.entries.create_index([("user_id", 1), ("inbox", 1), ("read_at", 1), ("seq", 1)])
        await self.entries.create_index([("created_at", 1)])

    # --- writing -------------------------------------------------------------------------------
    async def next_seq(self, user_id: str) -> int:
        head = await self.heads.update_one({"_id": user_id}, {"$inc": {"seq": 1}}, upsert=True)
        assert head is not None  # an upsert always returns the document
        return int(head["seq"])

    async def store(self, doc: Document) -> Document:
        """Store an entry that already has its ``seq``; returns it, or the entry an earlier
        attempt stored under the same id or seq (a retry is fine)."""
        try:
            await self.entries.insert_one(doc)
        except DuplicateKeyError:
            if "_id" in doc:
                return await self.entries.find_one({"_id": doc["_id"]}) or doc
            return doc
        if doc["seq"] % PRUNE_EVERY == 0:
            await self.entries.delete_many(
                {"user_id": doc["user_id"], "seq": {"$lte": doc["seq"] - self.retain_per_user}}
            )
        return doc

    async def publish(self, doc: Mapping[str, Any]) -> None:
        """Announce an entry to every process, each of which pushes it to its own sockets."""
        kind = READ if doc.get("kind") == READ else CREATED
        await self.ctx.publish(
            kind, {"user_id": doc["user_id"], "message": message_of(doc)}, subject=doc["user_id"]
        )

    async def append_read(self, user_id: str, payload: Mapping[str, Any]) -> None:
        """A read-state change, in the stream so that other connections (and resumes) see it."""
        doc: Document = {
            "user_id": user_id,
            "seq": await self.next_seq(user_id),
            "kind": READ,
            "inbox": False,
            "payload": dict(payload),
            "created_at": now_iso(),
        }
        await self.store(doc)
        await self.publish(doc)

    async def prune_old(self) -> int:
        cutoff = (datetime.now(UTC) - timedelta(days=self.retain_days)).isoformat(timespec="milliseconds")
        return await self.entries.delete_many({"created_at": {"$lt": cutoff}})

    # --- reading -------------------------------------------------------------------------------
    async def head(self, user_id: str) -> int:
        doc = await self.heads.find_one({"_id": user_id})
        return int(doc["seq"]) if doc else 0

    async def recoverable(self, user_id: str, after: int, head: int) -> bool:
        """Whether every entry after ``after`` is still stored (holes aside)."""
        if after > head:
            return False  # an id this stream never gave: the client's state is from elsewhere
        if after == head:
            return True
        oldest = await self.entries.find_one({"user_id": user_id}, sort=[("seq", 1)])
        return oldest is not None and int(oldest["seq"]) <= after + 1

    async def between(self, user_id: str, after: int, before: int | None = None) -> list[Message]:
        """Stored messages with ``after < seq < before``, oldest first (at most one page)."""
        bounds: dict[str, int] = {"$gt": after}
        if before is not None:
            bounds["$lt"] = before
        docs = await self.entries.find({"user_id": user_id, "seq": bounds}, sort=[("seq", 1)], limit=PAGE)
        return [message_of(doc) for doc in docs]

    async def replay(self, user_id: str, after: int) -> AsyncIterator[Message]:
        """Every stored message after ``after``, oldest first, page by page."""
        while batch := await self.between(user_id, after):
            for message in batch:
                yield message
            after = int(batch[-1]["id"])
