"""The inbox: a user's stored notifications, newest first, with their read state.

Reading is itself announced: each change appends a ``notification.read`` entry to the user's
stream, so the user's other connections update at once and a resuming one catches up.
"""

from __future__ import annotations

from typing import Any

from fittracker_plugins.notifications.service import InAppTracker
from fittracker_plugins.notifications.stream import Stream, now_iso, public_item

from fittracker import NotFound, ValidationFailed
from fittracker.http.pagination import decode_cursor, encode_cursor

NO_NOTIFICATION = "no notification with this id"


class Inbox:
    def __init__(self, stream: Stream, in_app: InAppTracker | None = None) -> None:
        self.stream = stream
        self.entries = stream.entries
        self.in_app = in_app

    async def page(self, user_id: str, *, unread: bool, cursor: str | None, limit: int) -> dict[str, Any]:
        query: dict[str, Any] = {"user_id": user_id, "inbox": True}
        if unread:
            query["read_at"] = None
        if cursor is not None:
            (before,) = decode_cursor(cursor, 1)
            if not before.isdigit():
                raise ValidationFailed(
                    "invalid cursor", errors=[{"field": "cursor", "message": "not a cursor of this list"}]
                )
            query["seq"] = {"$lt": int(before)}
        docs = await self.entries.find(query, sort=[("seq", -1)], limit=limit + 1)
        more = len(docs) > limit
        docs = docs[:limit]
        next_cursor = encode_cursor(str(docs[-1]["seq"])) if more and docs else None
        return {"items": [public_item(d) for d in docs], "next_cursor": next_cursor}

    async def unread_count(self, user_id: str) -> int:
        return await self.entries.count({"user_id": user_id, "inbox": True, "read_at": None})

    async def mark_read(self, user_id: str, notification_id: str) -> dict[str, Any]:
        """Mark one read (again is fine: nothing changes and nothing is announced)."""
        read_at = now_iso()
        mine = {"_id": notification_id, "user_id": user_id, "inbox": True}
        doc = await self.entries.update_one({**mine, "read_at": None}, {"$set": {"read_at": read_at}})
        if doc is None:
            doc = await self.entries.find_one(mine)
            if doc is None:
                raise NotFound(NO_NOTIFICATION)
            return public_item(doc)
        await self.stream.append_read(user_id, {"ids": [notification_id], "all": False, "read_at": read_at})
        if self.in_app is not None:
            await self.in_app.mark_in_app(notification_id, user_id, "read", category=doc["category"])
        return public_item(doc)

    async def mark_all_read(self, user_id: str) -> int:
        read_at = now_iso()
        updated = await self.entries.update_many(
            {"user_id": user_id, "inbox": True, "read_at": None}, {"$set": {"read_at": read_at}}
        )
        if updated:
            await self.stream.append_read(user_id, {"ids": None, "all": True, "read_at": read_at})
            await self._track_read(user_id, read_at)
        return updated

    async def _track_read(self, user_id: str, read_at: str) -> None:
        """Mark read in the delivery records what this call read: the items stamped ``read_at``."""
        if self.in_app is None:
            return
        after = -1
        while docs := await self.entries.find(
            {"user_id": user_id, "inbox": True, "read_at": read_at, "seq": {"$gt": after}},
            sort=[("seq", 1)],
            limit=200,
        ):
            for doc in docs:
                await self.in_app.mark_in_app(doc["_id"], user_id, "read", category=doc["category"])
            after = int(docs[-1]["seq"])
