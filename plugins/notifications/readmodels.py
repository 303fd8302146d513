"""Read models kept from other plug-ins' events: who follows whom, and a directory of users.

The users plug-in owns accounts and follows; this plug-in keeps only what it needs to address
notifications, so it never calls back. ``users_directory`` docs are exactly
``{_id: user_id, email, name, timezone}``: the delivery pipeline reads email addresses there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fittracker import Event
from fittracker.storage import Collection, Database, DuplicateKeyError

BATCH = 500


class Directory:
    def __init__(self, db: Database) -> None:
        self.users: Collection = db.collection("users_directory")

    async def get(self, user_id: str) -> dict[str, Any] | None:
        return await self.users.find_one({"_id": user_id})

    async def name_of(self, user_id: str) -> str:
        doc = await self.get(user_id)
        return str(doc["name"]) if doc and doc.get("name") else "Someone"

    async def timezone_of(self, user_id: str) -> str | None:
        doc = await self.get(user_id)
        zone = doc.get("timezone") if doc else None
        return zone if isinstance(zone, str) and zone else None

    async def on_registered(self, event: Event) -> None:
        user_id, email, name = (event.data.get(k) for k in ("user_id", "email", "name"))
        if not isinstance(user_id, str):
            return
        await self.users.update_one(
            {"_id": user_id},
            {"$set": {"email": email, "name": name}, "$setOnInsert": {"timezone": None}},
            upsert=True,
        )

    async def on_profile_updated(self, event: Event) -> None:
        user_id = event.data.get("user_id")
        values = event.data.get("values") or {}
        changes = {k: values[k] for k in ("name", "email", "timezone") if k in values}
        if not isinstance(user_id, str) or not changes:
            return
        defaults = {k: None for k in ("email", "name", "timezone") if k not in changes}
        update: dict[str, Any] = {"$set": changes}
        if defaults:
            update["$setOnInsert"] = defaults
        await self.users.update_one({"_id": user_id}, update, upsert=True)


class Follows:
    """``follows`` docs ``{_id, follower_id, followee_id, active, time}``; the newest event wins,
    so a late redelivery of an old follow cannot undo a later unfollow."""

    def __init__(self, db: Database) -> None:
        self.edges: Collection = db.collection("follows")

    async def create_indexes(self) -> None:
        await self.edges.create_index([("followee_id", 1), ("active", 1), ("_id", 1)])

    async def _apply(self, event: Event, active: bool) -> None:
        follower, followee = event.data.get("follower_id"), event.data.get("followee_id")
        if not isinstance(follower, str) or not isinstance(followee, str):
            return
        key = f"{follower}:{followee}"
        newer = {"_id": key, "time": {"$lte": event.time}}
        values = {"follower_id": follower, "followee_id": followee, "active": active, "time": event.time}
        try:
            await self.edges.update_one(newer, {"$set": values}, upsert=True)
        except DuplicateKeyError:
            return  # the edge holds a newer event already

    async def on_followed(self, event: Event) -> None:
        await self._apply(event, True)

    async def on_unfollowed(self, event: Event) -> None:
        await self._apply(event, False)

    async def followers(self, user_id: str) -> AsyncIterator[str]:
        """The followers of ``user_id``, a batch at a time (never all in memory)."""
        after = ""
        while True:
            docs = await self.edges.find(
                {"followee_id": user_id, "active": True, "_id": {"$gt": after}},
                sort=[("_id", 1)],
                limit=BATCH,
            )
            for doc in docs:
                yield str(doc["follower_id"])
            if len(docs) < BATCH:
                return
            after = docs[-1]["_id"]
