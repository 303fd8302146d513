"""Personal records: detected as sets are logged, recomputed when history changes.

Per (user, exercise) one document holds every current record: ``heaviest_weight``,
``best_e1rm``, ``most_reps`` (a list: the most reps at each weight) and ``session_volume``
(checked when a workout is finished). Warm-up sets never count (see :mod:`.strength`).

Race-freedom: every write is a compare-and-set on the document's ``rev``; a detection that
loses the race re-reads and re-compares, so two concurrent record sets yield one consistent
record and each improvement is announced once. Detection bumps ``rev`` even when nothing
improved: a recompute that read the sessions before this set's session was written then
fails its compare-and-set and starts over, so it cannot drop the new set.

Edits, deletions and discards recompute the exercise's records from its live sessions, with
no events. Ties keep the earlier achievement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fittracker_plugins.workouts.derived import cas_write, user_key
from fittracker_plugins.workouts.strength import RECORD_UNITS, set_candidates

from fittracker.storage import Collection, Database, Document

SINGLE = ("heaviest_weight", "best_e1rm", "session_volume")


def record_id(user_id: str, exercise_id: str) -> str:
    return f"{user_id}:{exercise_id}"


def _empty(user_id: str, exercise: Mapping[str, Any]) -> Document:
    return {
        "user_id": user_id,
        "exercise_id": exercise["id"],
        "exercise_name": exercise.get("name") or exercise["id"],
        "heaviest_weight": None,
        "best_e1rm": None,
        "session_volume": None,
        "most_reps": [],
    }


def _beats(mark: Mapping[str, Any] | None, held: Mapping[str, Any] | None) -> bool:
    return mark is not None and (held is None or mark["value"] > held["value"])


def _apply(book: Document, record_type: str, mark: Mapping[str, Any]) -> Any:
    """Put ``mark`` into ``book`` if it beats the held record; return the previous value or ``...``."""
    if record_type == "most_reps":
        rows = book["most_reps"]
        held = next((r for r in rows if r["weight_kg"] == mark["weight_kg"]), None)
        if not _beats(mark, held):
            return ...
        book["most_reps"] = sorted(
            [r for r in rows if r is not held] + [dict(mark)], key=lambda r: r["weight_kg"]
        )
        return held["value"] if held else None
    held = book[record_type]
    if not _beats(mark, held):
        return ...
    book[record_type] = dict(mark)
    return held["value"] if held else None


def achievement(
    book: Mapping[str, Any], record_type: str, mark: Mapping[str, Any], previous: Any
) -> Document:
    """The ``record.achieved`` payload (also what a set or a finish reports as broken)."""
    return {
        "user_id": book["user_id"],
        "workout_id": mark["workout_id"],
        "exercise_id": book["exercise_id"],
        "exercise_name": book["exercise_name"],
        "record_type": record_type,
        "value": mark["value"],
        "unit": RECORD_UNITS[record_type],
        "weight_kg": mark.get("weight_kg") if record_type == "most_reps" else None,
        "previous": previous,
        "set_id": mark.get("set_id"),
        "achieved_at": mark["achieved_at"],
    }


def rebuild(user_id: str, exercise: Mapping[str, Any], sessions: list[Document]) -> Document:
    """The records an exercise's live sessions hold, oldest session first."""
    book = _empty(user_id, exercise)
    for session in sorted(sessions, key=lambda s: (s["started_at"], s["workout_id"])):
        where = {"workout_id": session["workout_id"]}
        for record_type in ("heaviest_weight", "best_e1rm"):
            if session[record_type] is not None:
                _apply(book, record_type, {**session[record_type], **where})
        for mark in session["most_reps"]:
            _apply(book, "most_reps", {**mark, **where})
        if session["finished"] and session["volume_kg"] > 0:
            volume = {"value": session["volume_kg"], "set_id": None, "achieved_at": session["finished_at"]}
            _apply(book, "session_volume", {**volume, **where})
    return book


class RecordBook:
    def __init__(self, db: Database) -> None:
        self.records: Collection = db.collection("records")
        self.sessions: Collection = db.collection("sessions")

    async def create_indexes(self) -> None:
        await self.records.create_index([("user_id", 1), ("exercise_id", 1)])

    async def _claim(
        self, user_id: str, exercise: Mapping[str, Any], marks: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[Document]:
        won: list[Document] = []

        async def compute(current: Document | None) -> Document:
            book = {
                k: v for k, v in (current or _empty(user_id, exercise)).items() if k not in ("_id", "rev")
            }
            won.clear()
            for record_type, mark in marks:
                previous = _apply(book, record_type, mark)
                if previous is not ...:
                    won.append(achievement(book, record_type, mark, previous))
            # Unchanged, only ``rev`` is bumped (an empty body): that still fences off a
            # recompute that read the sessions before this set, without rewriting the book.
            return book if won or current is None else {}

        await cas_write(self.records, record_id(user_id, exercise["id"]), "rev", compute)
        return won

    async def detect_set(
        self, user_id: str, workout_id: str, exercise: Mapping[str, Any], item: Mapping[str, Any]
    ) -> list[Document]:
        """The records a freshly logged set broke (already stored), in a stable order."""
        marks = [
            (record_type, {**mark, "workout_id": workout_id})
            for record_type, mark in set_candidates(item).items()
            if mark is not None
        ]
        return await self._claim(user_id, exercise, marks)

    async def detect_session_volume(
        self, user_id: str, workout_id: str, exercise: Mapping[str, Any], volume_kg: float, finished_at: str
    ) -> list[Document]:
        if volume_kg <= 0:
            return []
        mark = {"value": volume_kg, "set_id": None, "achieved_at": finished_at, "workout_id": workout_id}
        return await self._claim(user_id, exercise, [("session_volume", mark)])

    async def recompute(self, user_id: str, exercise: Mapping[str, Any]) -> None:
        """Rebuild an exercise's records from its live sessions (no announcements)."""

        async def compute(current: Document | None) -> Document | None:
            sessions = await self.sessions.find({"uex": user_key(user_id, exercise["id"]), "live": True})
            if current is None and not sessions:
                return None
            book = rebuild(user_id, exercise, sessions)
            if current is not None:
                book["exercise_name"] = current["exercise_name"]
            return book

        await cas_write(self.records, record_id(user_id, exercise["id"]), "rev", compute)

    async def of_user(self, user_id: str, exercise_id: str | None = None) -> list[Document]:
        flt: dict[str, Any] = {"user_id": user_id}
        if exercise_id is not None:
            flt["exercise_id"] = exercise_id
        return await self.records.find(flt, sort=[("exercise_name", 1), ("exercise_id", 1)])
