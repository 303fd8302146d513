"""What the AI knows about each user, kept from the users plug-in's events.

``profile.updated`` carries the changed fields and their new values, so the AI never calls the
users plug-in (database per service). One document per user in ``athletes``; each field
remembers the time of the event that set it, so a replayed or late older event never
overwrites a newer value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fittracker import Event
from fittracker.storage import Collection, Database

PROFILE_UPDATED = "profile.updated"
USER_REGISTERED = "user.registered"
EVENT_TYPES = (USER_REGISTERED, PROFILE_UPDATED)
FIELDS = ("experience", "goals", "equipment", "excluded_muscles", "days_per_week", "timezone", "units")


@dataclass(frozen=True, slots=True)
class Athlete:
    """A user's training-relevant profile; every field may be unknown."""

    user_id: str
    experience: str | None = None
    goals: tuple[str, ...] = ()
    equipment: tuple[str, ...] = ()
    excluded_muscles: tuple[str, ...] = ()
    days_per_week: int | None = None
    timezone: str | None = None
    units: str = "kg"

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    @property
    def goal(self) -> str:
        """The first goal the user named, ``general`` when none."""
        return self.goals[0] if self.goals else "general"

    @classmethod
    def from_doc(cls, user_id: str, doc: Mapping[str, Any] | None) -> Athlete:
        doc = doc or {}
        days = doc.get("days_per_week")
        return cls(
            user_id=user_id,
            experience=doc.get("experience"),
            goals=tuple(doc.get("goals") or ()),
            equipment=tuple(doc.get("equipment") or ()),
            excluded_muscles=tuple(doc.get("excluded_muscles") or ()),
            days_per_week=int(days) if isinstance(days, int) else None,
            timezone=doc.get("timezone"),
            units=doc.get("units") or "kg",
        )


class Athletes:
    def __init__(self, db: Database) -> None:
        self.docs: Collection = db.collection("athletes")

    async def get(self, user_id: str) -> Athlete:
        return Athlete.from_doc(user_id, await self.docs.find_one({"_id": user_id}))

    async def apply(self, event: Event) -> None:
        user_id = event.data.get("user_id")
        if not isinstance(user_id, str):
            return
        if event.type == USER_REGISTERED:
            await self.docs.update_one({"_id": user_id}, {"$set": {"registered_at": event.time}}, upsert=True)
            return
        values = event.data.get("values")
        if not isinstance(values, Mapping):
            return
        current = await self.docs.find_one({"_id": user_id}) or {}
        stamps: Mapping[str, str] = current.get("as_of") or {}
        changes: dict[str, Any] = {}
        for name in FIELDS:
            if name in values and stamps.get(name, "") <= event.time:
                changes[name] = values[name]
                changes[f"as_of.{name}"] = event.time
        if changes:
            await self.docs.update_one({"_id": user_id}, {"$set": changes}, upsert=True)
