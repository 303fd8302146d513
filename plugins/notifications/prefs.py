"""Per-user preferences: which channels each category uses, and quiet hours in the user's zone.

Stored in ``preferences`` as ``{_id: user_id, categories, quiet_hours, timezone, updated_at}``
with only what the user changed; defaults fill the rest, so a new default reaches everyone
who never touched that switch. The time zone falls back to the profile's (the directory read
model), then UTC.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fittracker_plugins.notifications.models import (
    CATEGORIES,
    CHANNELS,
    PROGRESS,
    Preferences,
    PreferencesUpdate,
    QuietHours,
)
from fittracker_plugins.notifications.readmodels import Directory
from fittracker_plugins.notifications.stream import now_iso

from fittracker.storage import Collection, Database

# In-app everywhere; push for what is timely; email only for what must not be missed.
DEFAULTS: dict[str, dict[str, bool]] = {
    "achievements": {"in_app": True, "push": True, "email": False},
    "social": {"in_app": True, "push": True, "email": False},
    "coaching": {"in_app": True, "push": True, "email": False},
    "reminders": {"in_app": True, "push": True, "email": True},
    "system": {"in_app": True, "push": False, "email": True},
}


def fixed_channels(category: str) -> list[str] | None:
    """The channels of a category no preference changes (the live-only progress mirror)."""
    return ["in_app"] if category == PROGRESS else None


@dataclass(frozen=True, slots=True)
class Effective:
    """A user's preferences with defaults applied: what :class:`Notifier` decides with."""

    categories: dict[str, dict[str, bool]]
    quiet_hours: QuietHours | None
    timezone: str
    timezone_source: str

    def channels(self, category: str) -> list[str]:
        fixed = fixed_channels(category)
        if fixed is not None:
            return fixed
        switches = self.categories.get(category, {})
        return [channel for channel in CHANNELS if switches.get(channel)]

    def quiet_until(self, now: datetime) -> datetime | None:
        """The end of the quiet hours when ``now`` is inside them, else None."""
        if self.quiet_hours is None:
            return None
        zone = zoneinfo.ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        start, end = (time.fromisoformat(self.quiet_hours.start), time.fromisoformat(self.quiet_hours.end))
        clock = local.time().replace(tzinfo=None)
        inside = start <= clock < end if start < end else (clock >= start or clock < end)
        if not inside:
            return None
        day = local.date() if clock < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)

    def public(self) -> Preferences:
        return Preferences.model_validate(
            {
                "categories": self.categories,
                "quiet_hours": self.quiet_hours,
                "timezone": self.timezone,
                "timezone_source": self.timezone_source,
            }
        )


class PreferenceStore:
    def __init__(self, db: Database, directory: Directory) -> None:
        self.prefs: Collection = db.collection("preferences")
        self.directory = directory

    async def effective(self, user_id: str) -> Effective:
        doc = await self.prefs.find_one({"_id": user_id}) or {}
        stored = doc.get("categories") or {}
        categories = {name: {**DEFAULTS[name], **(stored.get(name) or {})} for name in CATEGORIES}
        quiet = doc.get("quiet_hours")
        zone, source = doc.get("timezone"), "preferences"
        if not zone:
            zone, source = await self.directory.timezone_of(user_id), "profile"
        if not zone or not _known_zone(zone):
            zone, source = "UTC", "default"
        return Effective(categories, QuietHours.model_validate(quiet) if quiet else None, zone, source)

    async def update(self, user_id: str, body: PreferencesUpdate) -> Effective:
        sent = body.model_fields_set
        changes: dict[str, Any] = {"updated_at": now_iso()}
        for name, switches in (body.categories or {}).items():
            for channel, value in switches.model_dump(exclude_none=True).items():
                changes[f"categories.{name}.{channel}"] = value
        if "quiet_hours" in sent:
            changes["quiet_hours"] = body.quiet_hours.model_dump() if body.quiet_hours else None
        if "timezone" in sent:
            changes["timezone"] = body.timezone
        await self.prefs.update_one({"_id": user_id}, {"$set": changes}, upsert=True)
        return await self.effective(user_id)


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
