"""Coaching tips after a workout: one ``coach.tip`` event per finished workout.

On ``workout.completed`` the coach picks the workout's most telling lift and publishes its
next target (the notifications plug-in delivers it):

1. a lift that set a record (best e1RM, heaviest weight, most reps, session volume) —
   "New record on Barbell Squat: 105 kg. Next time try 102.5 kg x 5";
2. else a lift that has stalled and needs a deload (see :mod:`.progression`);
3. else the lift with the most volume in the workout.

The target comes from the same progression rules as ``GET /progression/{id}``, over the
user's earlier sessions plus this workout's sets as the event carries them (so the tip never
waits for the read model). Tips are for fresh workouts only: a workout finished more than
``TIP_MAX_AGE`` ago (a backlog after downtime) gets none. Each tip carries ``tip_id`` (the
workout id), so a redelivered event never notifies twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fittracker_plugins.ai.athletes import Athlete
from fittracker_plugins.ai.goals import progression_params
from fittracker_plugins.ai.progression import ProgressionParams, prescribe, sessions_of
from fittracker_plugins.ai.readmodel import TrainingLog
from fittracker_plugins.ai.units import shown

from fittracker import Event, PluginContext
from fittracker.bus import Handler
from fittracker.storage import DuplicateKeyError

WORKOUT_COMPLETED = "workout.completed"
TIP_MAX_AGE = timedelta(hours=24)
HISTORY_SETS = 60
RECORD_WORDS = {
    "best_e1rm": "best estimated 1RM",
    "heaviest_weight": "heaviest weight",
    "most_reps": "most reps",
    "session_volume": "best session volume",
    "best_session_volume": "best session volume",
}


def _volume(sets: Sequence[Mapping[str, Any]]) -> float:
    return sum(int(s.get("reps") or 0) * float(s.get("weight_kg") or 0) for s in sets)


def pick(
    records: Sequence[Mapping[str, Any]], by_exercise: Mapping[str, Sequence[Mapping[str, Any]]]
) -> tuple[str, Mapping[str, Any] | None]:
    """The exercise the tip is about, and the record it set (if any)."""
    for kind in ("best_e1rm", "heaviest_weight", "most_reps", "session_volume", "best_session_volume"):
        for mark in records:
            if mark.get("record_type") == kind and mark.get("exercise_id") in by_exercise:
                return str(mark["exercise_id"]), mark
    return max(by_exercise, key=lambda e: (_volume(by_exercise[e]), e)), None


def compose(
    name: str,
    plan: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    units: str,
) -> tuple[str, str]:
    """The tip's title and body."""
    weight = shown(float(plan["weight_kg"]), units)
    target = f"{weight:g} {units} x {plan['reps']}"
    if plan["method"] == "deload":
        return f"Time to deload {name}", f"{plan['reason']}. Next time: {plan['sets']} sets of {target}."
    if record is not None:
        value, unit = record.get("value"), record.get("unit") or ""
        what = RECORD_WORDS.get(str(record.get("record_type")), "a record")
        shown_value = shown(float(value), units) if unit == "kg" and isinstance(value, int | float) else value
        unit_word = units if unit == "kg" else unit
        return (
            f"New record on {name}",
            f"New {what} on {name}: {shown_value:g} {unit_word}. Next time try {target} "
            f"({plan['sets']} sets).",
        )
    return f"Next time on {name}", f"Next time try {target} for {plan['sets']} sets: {plan['reason']}."


class Coach:
    """Publishes one tip per finished workout (see the module docstring)."""

    def __init__(self, ctx: PluginContext, log: TrainingLog, defaults: ProgressionParams) -> None:
        self.ctx = ctx
        self.log = log
        self.defaults = defaults

    def handlers(self) -> Mapping[str, Handler]:
        return {WORKOUT_COMPLETED: self.on_completed}

    async def on_completed(self, event: Event) -> None:
        data = event.data
        user_id, workout_id = data.get("user_id"), data.get("workout_id")
        if not isinstance(user_id, str) or not isinstance(workout_id, str):
            return
        finished = datetime.fromisoformat(str(data.get("finished_at") or event.time))
        if datetime.now(UTC) - finished > TIP_MAX_AGE:
            return
        key = f"tip:{workout_id}"
        if await self.log.seen.find_one({"_id": key}) is not None:
            return
        tip = await self.tip(user_id, workout_id, data)
        if tip is not None:
            await self.ctx.publish("coach.tip", tip, subject=user_id)
        with contextlib.suppress(DuplicateKeyError):
            await self.log.seen.insert_one({"_id": key, "type": "coach.tip"})

    async def tip(self, user_id: str, workout_id: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
        by_exercise: dict[str, list[Mapping[str, Any]]] = {}
        for item in data.get("sets") or ():
            if isinstance(item, Mapping) and item.get("set_type") != "warmup" and item.get("reps"):
                by_exercise.setdefault(str(item.get("exercise_id")), []).append(item)
        if not by_exercise:
            return None
        exercises = {str(e.get("id")): e for e in data.get("exercises") or () if isinstance(e, Mapping)}
        records = [r for r in data.get("records") or () if isinstance(r, Mapping)]
        athlete = await self.log.athletes.get(user_id)
        plans = {
            exercise_id: await self._plan(user_id, workout_id, exercise_id, todays, exercises, athlete)
            for exercise_id, todays in by_exercise.items()
        }
        chosen, record = pick(records, by_exercise)
        stalled = sorted(e for e, plan in plans.items() if plan["method"] == "deload")
        if record is None and stalled:
            chosen = stalled[0]  # a stall matters more than a routine target
        plan = plans[chosen]
        name = str((exercises.get(chosen) or {}).get("name") or chosen)
        title, body = compose(name, plan, record, athlete.units)
        return {
            "user_id": user_id,
            "workout_id": workout_id,
            "tip_id": workout_id,
            "title": title,
            "body": body,
            "data": {
                "exercise_id": chosen,
                "workout_id": workout_id,
                "weight_kg": plan["weight_kg"],
                "reps": plan["reps"],
                "sets": plan["sets"],
                "method": plan["method"],
            },
        }

    async def _plan(
        self,
        user_id: str,
        workout_id: str,
        exercise_id: str,
        todays: Sequence[Mapping[str, Any]],
        exercises: Mapping[str, Mapping[str, Any]],
        athlete: Athlete,
    ) -> dict[str, Any]:
        earlier = await self.log.exercise_sets(user_id, exercise_id, last=HISTORY_SETS)
        sets = [s for s in earlier if s.get("workout_id") != workout_id]
        sets += [{**s, "workout_id": workout_id} for s in todays]
        info = exercises.get(exercise_id) or {}
        params = progression_params(athlete, self.defaults, info.get("mechanic"))
        return prescribe(sessions_of(sets), list(info.get("primary_muscles") or []), params)
