"""Workout logging as a service: every change to a workout, its derived data and its events.

Order of each change: the workout document first (the source of truth, marked ``stale``),
then its sessions (versioned), then records (compare-and-set), then the week roll-up, then
``stale`` is cleared, then the events. A crash in between leaves the workout ``stale``;
:meth:`Logbook.repair` rebuilds its derived data at the next start, so progress and records
never stay behind the workouts they come from. Events
carry enough (sets, exercise names and muscles, records) for other plug-ins to keep their own
read models without calling back. Hangs off the plug-in's sub-app (``logbook_of(request)``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiohttp import web
from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.derived import Derived
from fittracker_plugins.workouts.models_workouts import MAX_WEIGHT_KG, SetCreate, SetUpdate
from fittracker_plugins.workouts.prefs import UserPrefs
from fittracker_plugins.workouts.records import RecordBook
from fittracker_plugins.workouts.routines import RoutineStore
from fittracker_plugins.workouts.strength import volume
from fittracker_plugins.workouts.units import to_kg
from fittracker_plugins.workouts.views import build_summary
from fittracker_plugins.workouts.workouts_store import WorkoutStore, new_id, now_iso

from fittracker import Conflict, NotFound, PluginContext, ValidationFailed
from fittracker.idempotency import check_same, derived_id
from fittracker.storage import Document, DuplicateKeyError

NO_WORKOUT = "no workout with this id"
# What a repeated request (same idempotency key) must ask for again, as stored.
WORKOUT_REQUEST_FIELDS = ("name", "notes", "started_at", "routine_id", "day_index")
SET_REQUEST_FIELDS = ("exercise_id", "reps", "weight_kg", "rpe", "duration_s", "distance_m", "set_type")
SUMMARY_WAIT_S = 2.0


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


# What events say of an exercise: enough for other plug-ins' read models (the AI's push/pull
# balance needs ``force``).
EVENT_EXERCISE_FIELDS = (
    *("id", "name", "category", "force", "mechanic", "equipment"),
    *("primary_muscles", "secondary_muscles"),
)


def exercise_info(exercise: Mapping[str, Any]) -> Document:
    return {key: exercise.get(key) for key in EVENT_EXERCISE_FIELDS}


def weight_of(body: SetCreate | SetUpdate) -> float | None:
    """The weight in kg from ``weight_kg`` or ``weight_lb``; 422 beyond 1000 kg."""
    if body.weight_lb is not None:
        kg = to_kg(body.weight_lb, "lb")
        if kg > MAX_WEIGHT_KG:
            raise invalid("weight_lb", f"must be at most {MAX_WEIGHT_KG:g} kg once converted")
        return kg
    return None if body.weight_kg is None else to_kg(body.weight_kg, "kg")


class Logbook:
    def __init__(self, ctx: PluginContext, catalog: Catalog, prefs: UserPrefs) -> None:
        self.ctx = ctx
        self.catalog = catalog
        self.prefs = prefs
        self.store = WorkoutStore(ctx.db)
        self.derived = Derived(ctx.db, self.store)
        self.records = RecordBook(ctx.db)
        self.routines = RoutineStore(ctx.db, catalog)

    async def start(self) -> None:
        await self.store.create_indexes()
        await self.derived.create_indexes()
        await self.records.create_indexes()
        await self.repair()
        await self.derived.settle()  # weeks a crash left marked

    async def close(self) -> None:
        await self.derived.close()

    async def repair(self) -> int:
        """Rebuild the derived data of workouts a crash left ``stale``; returns how many.

        Only derived data is rebuilt (silently, like after an edit); events of the interrupted
        change are not re-sent.
        """
        repaired = 0
        while batch := await self.store.stale():
            for doc in batch:
                if doc["status"] == "deleted":
                    await self._forget(doc)
                    await self.store.remove(doc["_id"])
                else:
                    await self._rederive(doc)
                repaired += 1
        if repaired:
            self.ctx.log.warning("rebuilt derived data of %d workout(s) after an interruption", repaired)
        return repaired

    async def _rederive(self, doc: Document) -> None:
        user_id = doc["user_id"]
        await self.store.write_head(doc)
        ids = [s["exercise_id"] for s in doc["sets"]] + await self.derived.session_exercises(doc["_id"])
        exercises = await self._exercises(user_id, ids)
        await self.derived.write_sessions(doc, exercises, exercises)
        for exercise in exercises.values():
            await self.records.recompute(user_id, exercise)
        if doc["status"] == "finished":
            await self.store.set_summary(doc["_id"], await self._summary(doc))
        await self.derived.touch_week(user_id, doc["started_at"])
        await self.store.mark_fresh(doc["_id"], int(doc["version"]))

    @property
    def max_sets(self) -> int:
        return int(self.ctx.settings.get("max_sets_per_workout", 300))

    async def _exercise(self, user_id: str, exercise_id: str) -> Document:
        found = await self.catalog.visible(user_id, exercise_id)
        if found is None:
            raise invalid("exercise_id", f"no exercise {exercise_id!r} is visible to you")
        return found

    async def _exercises(self, user_id: str, ids: Iterable[str]) -> dict[str, Document]:
        ids = list(dict.fromkeys(ids))
        found = await self.catalog.get_many(user_id, ids)
        # An exercise since deleted still needs a name for the derived data.
        return {
            i: found.get(i) or {"id": i, "name": i, "primary_muscles": [], "secondary_muscles": []}
            for i in ids
        }

    async def get(self, user_id: str, workout_id: str) -> Document:
        doc = await self.store.get(user_id, workout_id)
        if doc is None:
            raise NotFound(NO_WORKOUT)
        return doc

    # --- the workout -------------------------------------------------------------------------
    async def start_workout(
        self, user_id: str, fields: dict[str, Any], key: str | None = None
    ) -> tuple[Document, bool]:
        """Start a workout; with an idempotency ``key``, the one that key started, if any.

        Returns the workout and whether it is a replay (started by an earlier request).
        """
        workout_id = derived_id(user_id, "workouts", key) if key else None
        if workout_id is not None and (earlier := await self.store.get(user_id, workout_id)) is not None:
            check_same(earlier, fields, WORKOUT_REQUEST_FIELDS)
            return earlier, True
        asked = dict(fields)
        if fields.get("routine_id"):
            fields["plan"] = await self._plan(user_id, fields["routine_id"], fields.get("day_index") or 0)
            fields["day_index"] = fields["plan"]["day_index"]
            fields["name"] = (
                fields.get("name") or f"{fields['plan']['routine_name']} - {fields['plan']['day_name']}"
            )
        try:
            doc = await self.store.create(user_id, fields, workout_id)
        except DuplicateKeyError:  # the same request, racing this one, started it first
            earlier = await self.store.get(user_id, workout_id or "")
            if earlier is None:
                raise
            check_same(earlier, asked, WORKOUT_REQUEST_FIELDS)
            return earlier, True
        if doc["routine_id"]:
            await self.routines.record_use(doc["routine_id"])
        await self.derived.touch_week(user_id, doc["started_at"])
        await self.store.mark_fresh(doc["_id"], int(doc["version"]))
        data = {"user_id": user_id, "workout_id": doc["_id"], "started_at": doc["started_at"]}
        data.update(routine_id=doc["routine_id"], day_index=doc["day_index"], name=doc["name"])
        # Every workout event's subject is its user: consumers handle one subject's events in
        # order, and what follows from a workout (records, feeds, read models) is per user.
        await self.ctx.publish("workout.started", data, subject=user_id)
        return doc, False

    async def _plan(self, user_id: str, routine_id: str, day_index: int) -> Document:
        routine = await self.routines.get_visible(user_id, routine_id)
        if routine is None:
            raise invalid("routine_id", f"no routine {routine_id!r} is visible to you")
        days = routine["days"]
        if day_index >= len(days):
            raise invalid("day_index", f"the routine has {len(days)} day(s); day_index counts from 0")
        day = days[day_index]
        return {
            "routine_id": routine["id"],
            "routine_name": routine["name"],
            "day_index": day_index,
            "day_name": day["name"],
            "exercises": [dict(ex) for ex in day["exercises"]],
        }

    async def update_workout(self, user_id: str, workout_id: str, changes: dict[str, Any]) -> Document:
        def change(doc: Document) -> dict[str, Any] | None:
            finished = doc.get("finished_at")
            if changes.get("started_at") and finished and changes["started_at"] > finished:
                raise invalid("started_at", "must not be after the workout finished")
            return changes or None

        result = await self.store.modify(user_id, workout_id, change)
        if result is None:
            raise NotFound(NO_WORKOUT)
        before, after = result
        if before["started_at"] != after["started_at"]:
            ids = [s["exercise_id"] for s in after["sets"]]
            await self.derived.write_sessions(after, ids, await self._exercises(user_id, ids))
            await self.derived.touch_week(user_id, before["started_at"])
            await self.derived.touch_week(user_id, after["started_at"])
        if after is not before:
            await self.store.mark_fresh(workout_id, int(after["version"]))
            data = {"user_id": user_id, "workout_id": workout_id, "changes": changes}
            await self.ctx.publish("workout.updated", data, subject=user_id)
        return after

    async def discard(self, user_id: str, workout_id: str) -> Document:
        def change(doc: Document) -> dict[str, Any] | None:
            if doc["status"] == "discarded":
                return None
            if doc["status"] != "in_progress":
                raise Conflict("only a workout in progress can be discarded; delete a finished one")
            return {"status": "discarded"}

        result = await self.store.modify(user_id, workout_id, change)
        if result is None:
            raise NotFound(NO_WORKOUT)
        before, after = result
        if before["status"] != "discarded":
            await self._forget(after)
            await self.store.mark_fresh(workout_id, int(after["version"]))
            data = {"user_id": user_id, "workout_id": workout_id, "started_at": after["started_at"]}
            await self.ctx.publish("workout.discarded", data, subject=user_id)
        return after

    async def delete(self, user_id: str, workout_id: str) -> None:
        doc = await self.store.mark_deleted(user_id, workout_id)
        if doc is None:
            raise NotFound(NO_WORKOUT)
        await self._forget(doc)  # its head already says "deleted", so the week no longer counts it
        await self.store.remove(workout_id)
        data = {"user_id": user_id, "workout_id": workout_id, "started_at": doc["started_at"]}
        data["exercise_ids"] = list(dict.fromkeys(s["exercise_id"] for s in doc["sets"]))
        await self.ctx.publish("workout.deleted", data, subject=user_id)

    async def _forget(self, doc: Document) -> None:
        """Tombstone a discarded/deleted workout's sessions and recompute the records they held."""
        ids = [s["exercise_id"] for s in doc["sets"]] + await self.derived.session_exercises(doc["_id"])
        exercises = await self._exercises(doc["user_id"], ids)
        await self.derived.write_sessions(doc, exercises, exercises)
        for exercise in exercises.values():
            await self.records.recompute(doc["user_id"], exercise)
        await self.derived.touch_week(doc["user_id"], doc["started_at"])

    # --- sets --------------------------------------------------------------------------------
    async def log_set(
        self, user_id: str, workout_id: str, body: SetCreate, key: str | None = None
    ) -> tuple[Document, list[Document], bool]:
        """Log a set: the stored set, the records it broke, and whether it is a replay (with an
        idempotency ``key``: the set that key logged earlier, and the records it broke then)."""
        exercise = await self._exercise(user_id, body.exercise_id)
        now = now_iso()
        item = {
            "id": derived_id(user_id, f"sets/{workout_id}", key) if key else new_id(),
            "exercise_id": body.exercise_id,
            "reps": body.reps,
            "weight_kg": weight_of(body),
            "rpe": body.rpe,
            "duration_s": body.duration_s,
            "distance_m": body.distance_m,
            "set_type": body.set_type,
            "logged_at": now,
            "updated_at": now,
        }
        after = await self.store.push_set(
            user_id, workout_id, item, self.max_sets, new_id_only=key is not None
        )
        if after is None:
            doc = await self.get(user_id, workout_id)
            earlier = next((s for s in doc["sets"] if s["id"] == item["id"]), None) if key else None
            if earlier is not None:
                check_same(earlier, item, SET_REQUEST_FIELDS)
                won = [mark for mark in doc.get("achievements", ()) if mark.get("set_id") == item["id"]]
                return earlier, won, True
            if doc["status"] != "in_progress":
                raise Conflict(f"the workout is {doc['status'].replace('_', ' ')}; no more sets can be added")
            raise Conflict(f"a workout holds at most {self.max_sets} sets")
        # The derived writes are independent: run together, they share round trips and commits.
        _, won, _ = await asyncio.gather(
            self.derived.write_sessions(after, [body.exercise_id], {body.exercise_id: exercise}),
            self._records_of_set(user_id, workout_id, exercise, item),
            self.derived.touch_week(user_id, after["started_at"]),
        )
        await self.store.mark_fresh(workout_id, int(after["version"]))
        data = {
            "user_id": user_id,
            "workout_id": workout_id,
            "set": item,
            "exercise": exercise_info(exercise),
        }
        await self.ctx.publish("workout.set_logged", data, subject=user_id)
        for mark in won:
            await self.ctx.publish("record.achieved", mark, subject=user_id)
        return item, won, False

    async def _records_of_set(
        self, user_id: str, workout_id: str, exercise: Document, item: Document
    ) -> list[Document]:
        won = await self.records.detect_set(user_id, workout_id, exercise, item)
        await self.store.add_achievements(workout_id, won)
        return won

    async def edit_set(self, user_id: str, workout_id: str, set_id: str, body: SetUpdate) -> Document:
        changes = body.model_dump(exclude_unset=True, exclude={"weight_kg", "weight_lb"})
        for field in ("reps", "exercise_id", "set_type"):
            if field in changes and changes[field] is None:
                raise invalid(field, "may not be null")
        if "exercise_id" in changes:
            await self._exercise(user_id, changes["exercise_id"])
        weight = weight_of(body)
        if weight is not None:
            changes["weight_kg"] = weight

        def change(doc: Document) -> dict[str, Any] | None:
            self._editable(doc)
            sets = [dict(s) for s in doc["sets"]]
            target = self._find_set(sets, set_id)
            target.update(changes, updated_at=now_iso())
            return {"sets": sets}

        before, after = await self._modify(user_id, workout_id, change)
        old = self._find_set(before["sets"], set_id)
        new = self._find_set(after["sets"], set_id)
        await self._after_set_change(after, [old["exercise_id"], new["exercise_id"]], set_id)
        data = {"user_id": user_id, "workout_id": workout_id, "set": new, "previous": old}
        await self.ctx.publish("workout.set_updated", data, subject=user_id)
        return new

    async def delete_set(self, user_id: str, workout_id: str, set_id: str) -> None:
        def change(doc: Document) -> dict[str, Any] | None:
            self._editable(doc)
            self._find_set(doc["sets"], set_id)
            sets = [s for s in doc["sets"] if s["id"] != set_id]
            return {"sets": sets, "set_count": len(sets)}

        before, after = await self._modify(user_id, workout_id, change)
        old = self._find_set(before["sets"], set_id)
        await self._after_set_change(after, [old["exercise_id"]], set_id)
        data = {"user_id": user_id, "workout_id": workout_id, "set": old}
        await self.ctx.publish("workout.set_deleted", data, subject=user_id)

    async def _modify(self, user_id: str, workout_id: str, change: Any) -> tuple[Document, Document]:
        result = await self.store.modify(user_id, workout_id, change)
        if result is None:
            raise NotFound(NO_WORKOUT)
        return result

    @staticmethod
    def _editable(doc: Document) -> None:
        if doc["status"] == "discarded":
            raise Conflict("the workout was discarded; its sets cannot change")

    @staticmethod
    def _find_set(sets: list[Document], set_id: str) -> Document:
        for item in sets:
            if item["id"] == set_id:
                return item
        raise NotFound("no set with this id in this workout")

    async def _after_set_change(self, doc: Document, exercise_ids: list[str], set_id: str) -> None:
        """Derived data after an edit or deletion: sessions, recomputed records (silently), summary."""
        user_id = doc["user_id"]
        exercises = await self._exercises(user_id, exercise_ids)
        await self.derived.write_sessions(doc, exercises, exercises)
        await self.store.drop_achievements(doc["_id"], [set_id])
        for exercise in exercises.values():
            await self.records.recompute(user_id, exercise)
        if doc["status"] == "finished":
            fresh = await self.get(user_id, doc["_id"])
            await self.store.set_summary(doc["_id"], await self._summary(fresh))
        await self.derived.touch_week(user_id, doc["started_at"])
        await self.store.mark_fresh(doc["_id"], int(doc["version"]))

    async def _summary(self, doc: Document) -> Document:
        names = await self._exercises(doc["user_id"], [s["exercise_id"] for s in doc["sets"]])
        return build_summary(doc, {i: str(e["name"]) for i, e in names.items()})

    # --- finishing ---------------------------------------------------------------------------
    async def finish(self, user_id: str, workout_id: str) -> Document:
        """Finish once; finishing again answers the stored summary and announces nothing."""

        def change(doc: Document) -> dict[str, Any] | None:
            if doc["status"] == "finished":
                return None
            if doc["status"] != "in_progress":
                raise Conflict("a discarded workout cannot be finished")
            return {"status": "finished", "finished_at": max(now_iso(), doc["started_at"])}

        before, after = await self._modify(user_id, workout_id, change)
        if before["status"] == "finished":
            return await self._stored_summary(user_id, workout_id)
        ids = list(dict.fromkeys(s["exercise_id"] for s in after["sets"]))
        exercises = await self._exercises(user_id, ids)
        await self.derived.write_sessions(after, ids, exercises)
        won: list[Document] = []
        for exercise_id, exercise in exercises.items():
            stats = [s for s in after["sets"] if s["exercise_id"] == exercise_id]
            won += await self.records.detect_session_volume(
                user_id, workout_id, exercise, volume(stats), after["finished_at"]
            )
        await self.store.add_achievements(workout_id, won)
        summary = await self._summary(await self.get(user_id, workout_id))
        await self.store.set_summary(workout_id, summary)
        await self.derived.touch_week(user_id, after["started_at"])
        await self.store.mark_fresh(workout_id, int(after["version"]))
        data = {
            "user_id": user_id,
            "workout_id": workout_id,
            "started_at": after["started_at"],
            "finished_at": after["finished_at"],
            "duration_s": summary["duration_s"],
            "volume_kg": summary["volume_kg"],
            "sets": after["sets"],
            "exercises": [exercise_info(e) for e in exercises.values()],
            "records": summary["records"],
        }
        for mark in won:
            await self.ctx.publish("record.achieved", mark, subject=user_id)
        await self.ctx.publish("workout.completed", data, subject=user_id)
        return summary

    async def _stored_summary(self, user_id: str, workout_id: str) -> Document:
        """The summary the first finish stored (waiting briefly if that finish is still running)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SUMMARY_WAIT_S
        while True:
            doc = await self.get(user_id, workout_id)
            if doc.get("summary") or loop.time() > deadline:
                break
            await asyncio.sleep(0.02)
        return doc.get("summary") or await self._summary(doc)


LOGBOOK = web.AppKey("fittracker_plugins.workouts.logbook", Logbook)


def logbook_of(request: web.Request) -> Logbook:
    return request.app[LOGBOOK]


def setup_logbook(app: web.Application, ctx: PluginContext, catalog: Catalog, prefs: UserPrefs) -> Logbook:
    logbook = Logbook(ctx, catalog, prefs)
    app[LOGBOOK] = logbook

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await logbook.start()
        yield
        await logbook.close()

    app.cleanup_ctx.append(lifecycle)
    return logbook
