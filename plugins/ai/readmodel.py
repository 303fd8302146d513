"""The plug-in's own read model, kept from the workouts and users plug-ins' events.

One document per logged set (``work_sets``, keyed by the set id) with what the models need:
exercise, muscles, force, reps, weight, RPE, set type and time. Indexed by (user, exercise)
and (user, time), so a progression or recovery read touches only that user's rows. Profiles
(equipment, experience, goals, excluded muscles, time zone) are kept by :mod:`.athletes`.

Beside the sets, ``exercise_sessions`` holds one small document per (workout, exercise) the
user trained, with the time of its first set: "how often has this user done X lately" reads a
few hundred of those instead of thousands of sets.

Events arrive at least once and, while the log is replayed, possibly twice and out of order:

- every event id is remembered in ``seen`` and applied once;
- deletions leave tombstones (``gone``: a deleted set or a deleted/discarded workout), so a
  late ``set_logged`` never resurrects what was removed.

When the database is empty (first start, or its files were deleted) the whole durable event
log is replayed with ``bus.tail`` from the epoch; the replay stops once it reaches events
newer than its own start (the consumer group delivers those) or the log goes quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fittracker_plugins.ai.athletes import EVENT_TYPES as PROFILE_EVENTS
from fittracker_plugins.ai.athletes import Athletes

from fittracker import Event, PluginContext
from fittracker.bus import Handler
from fittracker.storage import Collection, Database, Document, DuplicateKeyError

SET_LOGGED = "workout.set_logged"
SET_UPDATED = "workout.set_updated"
SET_DELETED = "workout.set_deleted"
WORKOUT_DELETED = "workout.deleted"
WORKOUT_DISCARDED = "workout.discarded"
WORKOUT_COMPLETED = "workout.completed"
SET_EVENTS = (SET_LOGGED, SET_UPDATED, SET_DELETED, WORKOUT_DELETED, WORKOUT_DISCARDED)
EVENT_TYPES = (*SET_EVENTS, *PROFILE_EVENTS)
EXERCISE_FIELDS = (
    *("name", "category", "force", "mechanic", "equipment"),
    *("primary_muscles", "secondary_muscles"),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REPLAY_IDLE_S = 0.5  # a replay that receives nothing for this long has caught up


class TrainingLog:
    def __init__(self, db: Database) -> None:
        self.sets: Collection = db.collection("work_sets")
        self.exercises: Collection = db.collection("exercises")
        self.seen: Collection = db.collection("seen_events")
        self.gone: Collection = db.collection("tombstones")
        self.meta: Collection = db.collection("meta")
        self.sessions: Collection = db.collection("exercise_sessions")
        self.athletes = Athletes(db)
        self.replaying = False
        self._learned: dict[str, dict[str, Any]] = {}  # what this process last wrote per exercise

    async def start(self) -> None:
        await self.sets.create_index([("user_id", 1), ("exercise_id", 1), ("logged_at", 1)])
        await self.sets.create_index([("user_id", 1), ("logged_at", 1)])
        await self.sets.create_index([("workout_id", 1)])
        await self.sessions.create_index([("user_id", 1), ("at", 1)])
        await self.sessions.create_index([("workout_id", 1)])

    # --- reads ---------------------------------------------------------------------------------
    async def exercise_sets(self, user_id: str, exercise_id: str, last: int | None = None) -> list[Document]:
        """The user's sets of one exercise, oldest first (only the ``last`` ones when given)."""
        query = {"user_id": user_id, "exercise_id": exercise_id}
        if last is None:
            return await self.sets.find(query, sort=[("logged_at", 1)])
        newest = await self.sets.find(query, sort=[("logged_at", -1)], limit=last)
        return newest[::-1]

    async def sets_since(self, user_id: str, since: datetime) -> list[Document]:
        return await self.sets.find(
            {"user_id": user_id, "logged_at": {"$gte": since.isoformat()}}, sort=[("logged_at", 1)]
        )

    async def familiar(self, user_id: str, since: datetime) -> dict[str, int]:
        """Sessions (distinct workouts) per exercise since ``since``."""
        found = await self.sessions.find({"user_id": user_id, "at": {"$gte": since.isoformat()}})
        counts: dict[str, int] = {}
        for doc in found:
            counts[doc["exercise_id"]] = counts.get(doc["exercise_id"], 0) + 1
        return counts

    async def recent_exercises(self, user_id: str, since: datetime) -> list[str]:
        """Exercises trained since ``since``, most recent first."""
        found = await self.sessions.find(
            {"user_id": user_id, "at": {"$gte": since.isoformat()}}, sort=[("at", -1)]
        )
        return list(dict.fromkeys(str(doc["exercise_id"]) for doc in found))

    async def exercise_name(self, exercise_id: str) -> str | None:
        doc = await self.exercises.find_one({"_id": exercise_id})
        return None if doc is None else str(doc.get("name") or exercise_id)

    async def exercise(self, exercise_id: str) -> Document | None:
        """What ``set_logged`` events taught us of an exercise (custom ones included)."""
        return await self.exercises.find_one({"_id": exercise_id})

    # --- events --------------------------------------------------------------------------------
    def handlers(self) -> Mapping[str, Handler]:
        return dict.fromkeys(EVENT_TYPES, self.handle)

    async def handle(self, event: Event) -> None:
        """Apply an event once; a redelivered event (same id) changes nothing."""
        if await self.seen.find_one({"_id": event.id}) is not None:
            return
        await self._apply(event)
        with contextlib.suppress(DuplicateKeyError):  # a concurrent replay got there first
            await self.seen.insert_one({"_id": event.id, "type": event.type})

    async def _apply(self, event: Event) -> None:
        if event.type in PROFILE_EVENTS:
            await self.athletes.apply(event)
            return
        data = event.data
        user_id, workout_id = data.get("user_id"), data.get("workout_id")
        if not isinstance(user_id, str) or not isinstance(workout_id, str):
            return
        if event.type in (WORKOUT_DELETED, WORKOUT_DISCARDED):
            await self._bury(workout_id)
            await self.sets.delete_many({"workout_id": workout_id})
            await self.sessions.delete_many({"workout_id": workout_id})
            return
        item = data.get("set")
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            return
        if event.type == SET_DELETED:
            await self._bury(item["id"])
            before = await self.sets.find_one({"_id": item["id"]})
            await self.sets.delete_one({"_id": item["id"]})
            if before is not None:
                await self._drop_empty_session(workout_id, str(before["exercise_id"]))
            return
        learned = None
        if event.type == SET_LOGGED and isinstance(data.get("exercise"), Mapping):
            learned = await self._learn_exercise(data["exercise"])
        for key in (item["id"], workout_id):  # point reads: no round trip to the database's thread
            if await self.gone.find_one({"_id": key}) is not None:
                return
        await self._store_set(user_id, workout_id, item, learned, new=event.type == SET_LOGGED)

    async def _bury(self, key: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.gone.insert_one({"_id": key})

    async def _learn_exercise(self, exercise: Mapping[str, Any]) -> dict[str, Any] | None:
        """Store what the event tells of an exercise; returns the stored fields."""
        if isinstance(exercise.get("id"), str):
            fields = {key: exercise.get(key) for key in EXERCISE_FIELDS if key in exercise}
            fields["name"] = exercise.get("name") or exercise["id"]
            for key in ("primary_muscles", "secondary_muscles"):
                fields[key] = list(exercise.get(key) or [])
            if self._learned.get(exercise["id"]) == fields:
                return fields  # every set of an exercise carries it: write it once, not once per set
            await self.exercises.update_one({"_id": exercise["id"]}, {"$set": fields}, upsert=True)
            if len(self._learned) >= 10_000:  # custom exercises are unbounded: start afresh
                self._learned.clear()
            self._learned[exercise["id"]] = fields
            return fields
        return None

    async def _store_set(
        self,
        user_id: str,
        workout_id: str,
        item: Mapping[str, Any],
        exercise: Mapping[str, Any] | None = None,
        *,
        new: bool = False,
    ) -> None:
        """Store a set; ``exercise`` is what its event told of the exercise, ``new`` that the
        set was just logged (it was not stored under another exercise before)."""
        if exercise is None:  # set_updated carries no exercise: muscles from what set_logged taught
            exercise = await self.exercises.find_one({"_id": item.get("exercise_id")}) or {}
        doc = {
            "user_id": user_id,
            "workout_id": workout_id,
            "exercise_id": item.get("exercise_id"),
            "primary_muscles": exercise.get("primary_muscles", []),
            "secondary_muscles": exercise.get("secondary_muscles", []),
            "force": exercise.get("force"),
            "reps": int(item.get("reps") or 0),
            "weight_kg": float(item.get("weight_kg") or 0.0),
            "rpe": item.get("rpe"),
            "set_type": item.get("set_type") or "normal",
            "logged_at": item.get("logged_at"),
        }
        before = None if new else await self.sets.find_one({"_id": item["id"]})
        await self.sets.update_one({"_id": item["id"]}, {"$set": doc}, upsert=True)
        session = {"user_id": user_id, "workout_id": workout_id, "exercise_id": doc["exercise_id"]}
        await self.sessions.update_one(
            {"_id": f"{workout_id}:{doc['exercise_id']}"},
            {"$set": session, "$setOnInsert": {"at": doc["logged_at"]}},
            upsert=True,
        )
        if before is not None and before["exercise_id"] != doc["exercise_id"]:  # moved to another lift
            await self._drop_empty_session(workout_id, str(before["exercise_id"]))

    async def _drop_empty_session(self, workout_id: str, exercise_id: str) -> None:
        if not await self.sets.count({"workout_id": workout_id, "exercise_id": exercise_id}):
            await self.sessions.delete_one({"_id": f"{workout_id}:{exercise_id}"})

    # --- rebuild -------------------------------------------------------------------------------
    async def rebuild_if_empty(self, ctx: PluginContext) -> None:
        """Replay the durable log into an empty read model (see the module docstring)."""
        if await self.meta.find_one({"_id": "replayed"}) is not None:
            return
        self.replaying = True
        started = datetime.now(UTC).isoformat()
        count = 0
        events = ctx.bus.tail(EVENT_TYPES, EPOCH)
        try:
            while True:
                try:
                    event = await asyncio.wait_for(anext(events), REPLAY_IDLE_S)
                except (TimeoutError, StopAsyncIteration):
                    break
                await self.handle(event)
                count += 1
                if event.time > started:  # the live consumer group covers the rest
                    break
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
            self.replaying = False
        await self.meta.update_one(
            {"_id": "replayed"}, {"$set": {"at": datetime.now(UTC).isoformat(), "events": count}}, upsert=True
        )
        ctx.log.info("ai read model rebuilt from the event log", extra={"events": count})
