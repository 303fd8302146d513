"""Event rules: what other plug-ins' events mean for whom.

| event | to | category |
|---|---|---|
| ``workout.set_logged``, ``workout.completed`` | the user (their other devices) | ``progress``: live only |
| ``record.achieved`` | the user: a celebration | ``achievements`` |
| ``record.achieved``, ``workout.completed`` | the user's followers | ``social`` |
| ``user.followed`` | the followed user | ``social`` |
| ``routine.rated`` | the routine's owner | ``social`` |
| ``coach.tip`` | the user | ``coaching`` |
| ``workout.completed`` | the user, N days later unless they train again | ``reminders`` (scheduled) |

Handlers run in the plug-in's consumer group (once per event across workers) and may run
twice (at-least-once): every notification carries an idempotency key made of the event id and
the rule, so a redelivered event notifies nobody twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fittracker_plugins.notifications.models import PROGRESS
from fittracker_plugins.notifications.readmodels import Directory, Follows
from fittracker_plugins.notifications.reminders import Reminders
from fittracker_plugins.notifications.service import Notifier

from fittracker import Event
from fittracker.bus import Handler

RECORD_NAMES = {
    "heaviest_weight": "heaviest weight",
    "best_e1rm": "best estimated 1RM",
    "most_reps": "most reps",
    "best_session_volume": "best session volume",
}


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


class Rules:
    def __init__(
        self, notifier: Notifier, directory: Directory, follows: Follows, reminders: Reminders | None = None
    ) -> None:
        self.notifier = notifier
        self.directory = directory
        self.follows = follows
        self.reminders = reminders

    def handlers(self) -> Mapping[str, Handler]:
        return {
            "workout.set_logged": self.on_set_logged,
            "workout.completed": self.on_workout_completed,
            "record.achieved": self.on_record,
            "coach.tip": self.on_coach_tip,
            "routine.rated": self.on_routine_rated,
            "user.followed": self.on_followed,
            "user.unfollowed": self.follows.on_unfollowed,
            "user.registered": self.directory.on_registered,
            "profile.updated": self.directory.on_profile_updated,
        }

    async def _to_followers(
        self, event: Event, user_id: str, type_: str, title: str, body: str, data: dict[str, Any]
    ) -> None:
        async for follower in self.follows.followers(user_id):
            await self.notifier.notify(
                follower,
                category="social",
                type=type_,
                title=title,
                body=body,
                data={**data, "user_id": user_id},
                idempotency_key=f"{event.id}:feed",
            )

    async def on_set_logged(self, event: Event) -> None:
        user_id, item = event.data.get("user_id"), event.data.get("set") or {}
        if not isinstance(user_id, str):
            return
        exercise = (event.data.get("exercise") or {}).get("name") or item.get("exercise_id", "exercise")
        weight = f" x {_fmt(item['weight_kg'])} kg" if item.get("weight_kg") is not None else ""
        await self.notifier.notify(
            user_id,
            category=PROGRESS,
            type="workout.set_logged",
            title="Set logged",
            body=f"{exercise}: {item.get('reps', 0)} reps{weight}",
            data={"workout_id": event.data.get("workout_id"), "set": item},
            idempotency_key=f"{event.id}:progress",
        )

    async def on_workout_completed(self, event: Event) -> None:
        user_id = event.data.get("user_id")
        if not isinstance(user_id, str):
            return
        if self.reminders is not None:  # the inactivity reminder moves to N days from now
            await self.reminders.on_workout_completed(event)
        volume = event.data.get("volume_kg") or 0
        sets = len(event.data.get("sets") or [])
        summary = {
            "workout_id": event.data.get("workout_id"),
            "volume_kg": volume,
            "duration_s": event.data.get("duration_s"),
            "sets": sets,
        }
        await self.notifier.notify(
            user_id,
            category=PROGRESS,
            type="workout.completed",
            title="Workout complete",
            body=f"{sets} sets, {_fmt(volume)} kg lifted",
            data=summary,
            idempotency_key=f"{event.id}:progress",
        )
        name = await self.directory.name_of(user_id)
        await self._to_followers(
            event, user_id, "social.workout_completed", f"{name} finished a workout",
            f"{sets} sets, {_fmt(volume)} kg lifted", summary,
        )  # fmt: skip

    async def on_record(self, event: Event) -> None:
        user_id = event.data.get("user_id")
        if not isinstance(user_id, str):
            return
        record = RECORD_NAMES.get(str(event.data.get("record_type")), "personal record")
        exercise = event.data.get("exercise_name") or event.data.get("exercise_id")
        value = f"{_fmt(event.data.get('value'))} {event.data.get('unit') or ''}".strip()
        data = {
            k: event.data.get(k)
            for k in ("workout_id", "exercise_id", "record_type", "value", "unit", "previous")
        }
        await self.notifier.notify(
            user_id,
            category="achievements",
            type="achievement.record",
            title="New personal record!",
            body=f"{exercise}: {record} {value}",
            data=data,
            idempotency_key=f"{event.id}:celebrate",
        )
        name = await self.directory.name_of(user_id)
        await self._to_followers(
            event,
            user_id,
            "social.record",
            f"{name} set a personal record",
            f"{exercise}: {record} {value}",
            data,
        )

    async def on_coach_tip(self, event: Event) -> None:
        user_id = event.data.get("user_id")
        body = (
            event.data.get("body")
            or event.data.get("message")
            or event.data.get("tip")
            or event.data.get("reason")
        )
        if not isinstance(user_id, str) or not body:
            return
        await self.notifier.notify(
            user_id,
            category="coaching",
            type="coaching.tip",
            title=str(event.data.get("title") or "A tip from your coach"),
            body=str(body),
            data=dict(event.data.get("data") or {}),
            # A publisher that may send one tip twice (at-least-once) names it with ``tip_id``.
            idempotency_key=f"tip:{event.data['tip_id']}" if event.data.get("tip_id") else f"{event.id}:tip",
        )

    async def on_routine_rated(self, event: Event) -> None:
        owner, rater = event.data.get("owner_id"), event.data.get("user_id")
        if not isinstance(owner, str) or owner == rater:
            return  # templates have no owner
        name = await self.directory.name_of(str(rater)) if isinstance(rater, str) else "Someone"
        stars = event.data.get("stars")
        await self.notifier.notify(
            owner,
            category="social",
            type="social.routine_rated",
            title="Your routine was rated",
            body=f"{name} gave your routine {stars} star{'s' if stars != 1 else ''}",
            data={k: event.data.get(k) for k in ("routine_id", "stars", "average", "count")},
            idempotency_key=f"{event.id}:rated",
        )

    async def on_followed(self, event: Event) -> None:
        await self.follows.on_followed(event)
        follower, followee = event.data.get("follower_id"), event.data.get("followee_id")
        if not isinstance(follower, str) or not isinstance(followee, str):
            return
        name = await self.directory.name_of(follower)
        await self.notifier.notify(
            followee,
            category="social",
            type="social.new_follower",
            title="New follower",
            body=f"{name} started following you",
            data={"user_id": follower},
            idempotency_key=f"{event.id}:followed",
        )
