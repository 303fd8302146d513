""" "You haven't trained in N days": one pending reminder per user, re-armed by every workout.

``workout.completed`` events (through the plug-in's event rules) keep a read model of each
user's last workout, ``last_workouts: {_id: user_id, last_workout_at}``, and move the user's
ONE reminder, the scheduled item ``reminder.<user_id>``, to ``last_workout_at + N days``
(setting ``reminder_after_days``, a float so tests can use seconds; 0 disables). The scheduler
fires it like any scheduled send. Both writes only move forward (filtered on an older
``last_workout_at``), so a late or redelivered event cannot pull a reminder back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fittracker_plugins.notifications.delivery_policy import iso, parse_iso, utcnow
from fittracker_plugins.notifications.schedule import ScheduledStore

from fittracker import Event, PluginContext
from fittracker.storage import Collection, DuplicateKeyError

CATEGORY = "reminders"
TYPE = "reminder.inactive"


def reminder_id(user_id: str) -> str:
    return f"reminder.{user_id}"


def _days(value: float) -> str:
    return "1 day" if value == 1 else f"{value:g} days"


class Reminders:
    def __init__(self, ctx: PluginContext, store: ScheduledStore, woke: Callable[[datetime], None]) -> None:
        self.after_days = float(ctx.settings["reminder_after_days"])
        self.last: Collection = ctx.db.collection("last_workouts")
        self.items = store.items
        self.woke = woke  # the scheduler's "added" hook: a near reminder must not wait a poll

    async def last_workout(self, user_id: str) -> str | None:
        doc = await self.last.find_one({"_id": user_id})
        return str(doc["last_workout_at"]) if doc else None

    async def on_workout_completed(self, event: Event) -> None:
        user_id = event.data.get("user_id")
        if not isinstance(user_id, str):
            return
        raw = event.data.get("finished_at") or event.time
        try:
            finished = parse_iso(str(raw))
        except ValueError:
            finished = parse_iso(event.time)
        at = iso(finished)
        try:
            await self.last.update_one(
                # $lte: a redelivered event re-arms, in case the first run stopped in between
                {"_id": user_id, "last_workout_at": {"$lte": at}},
                {"$set": {"last_workout_at": at}},
                upsert=True,
            )
        except DuplicateKeyError:
            return  # a later workout is known already: its reminder stands
        if self.after_days > 0:
            await self._arm(user_id, finished)

    async def _arm(self, user_id: str, finished: datetime) -> None:
        send_at = finished + timedelta(days=self.after_days)
        now = iso(utcnow())
        values: dict[str, Any] = {
            "state": "pending",
            "send_at": iso(send_at),
            "last_workout_at": iso(finished),
            "title": "Time to train?",
            "body": f"You haven't trained in {_days(self.after_days)}. Your next workout is waiting.",
            "data": {"last_workout_at": iso(finished)},
            "updated_at": now,
            "sent_at": None,
            "notification_id": None,
        }
        insert = {
            "kind": "reminder",
            "user_id": user_id,
            "category": CATEGORY,
            "type": TYPE,
            "created_by": user_id,
            "created_at": now,
        }
        try:
            await self.items.update_one(
                {"_id": reminder_id(user_id), "last_workout_at": {"$lt": iso(finished)}},
                {"$set": values, "$setOnInsert": insert},
                upsert=True,
            )
        except DuplicateKeyError:
            return  # armed for a later workout already
        self.woke(send_at)
