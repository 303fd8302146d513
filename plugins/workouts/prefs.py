"""A small read model of each user's preferences, kept from ``profile.updated`` events.

The users plug-in owns profiles; this plug-in keeps only what it needs (the weight unit)
so that responses can honour it without calling back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fittracker import Event
from fittracker.storage import Collection, Database

Units = Literal["kg", "lb"]


class UserPrefs:
    def __init__(self, db: Database) -> None:
        self.prefs: Collection = db.collection("user_prefs")

    async def units(self, user_id: str) -> Units:
        doc = await self.prefs.find_one({"_id": user_id})
        return "lb" if doc is not None and doc.get("units") == "lb" else "kg"

    async def on_profile_updated(self, event: Event) -> None:
        """Idempotent: applying the same event twice leaves the same state."""
        values = event.data.get("values") or {}
        units = values.get("units")
        user_id = event.data.get("user_id")
        if units in ("kg", "lb") and isinstance(user_id, str):
            await self.prefs.update_one(
                {"_id": user_id},
                {"$set": {"units": units, "updated_at": datetime.now(UTC).isoformat()}},
                upsert=True,
            )
