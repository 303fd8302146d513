"""Read models kept beside the workouts so progress reads stay fast at years of data.

``sessions``: one document per (workout, exercise) holding what that exercise's sets add up
to (best set, e1RM, volume, set count, reps at each weight, muscles, date). It is rewritten
from the workout document whenever that workout changes, tagged with the workout ``version``
it came from; a rewrite from an older version never overwrites a newer one, so concurrent
requests cannot leave a stale session behind. A session whose sets are all gone (or whose
workout was discarded or deleted) stays as a ``live: false`` tombstone, so that a late, stale
rewrite cannot resurrect it.

``weeks``: one document per (user, ISO week) rolled up from that week's sessions plus the
count of workouts started and finished. It is rebuilt whole (never incremented), guarded by a
generation number: a rebuild commits only if no other rebuild committed since it started
reading, else it starts over, so the last commit always saw the latest sessions.

Rebuilding a week on every logged set would cost more than the set itself, so a change only
marks its week ``dirty`` (a durable marker with a change counter, written with the change).
Marked weeks are rebuilt shortly after, a burst of sets making one rebuild, and before any
read of that user's weeks, in whichever process reads them; a marker is removed only if no
change came in while its week was rebuilt. A crash leaves markers, never stale weeks: the
next read or start-up rebuilds them.

Weeks are ISO weeks (Monday to Sunday) of the workout's ``started_at`` in UTC.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

from fittracker_plugins.workouts.strength import session_stats
from fittracker_plugins.workouts.workouts_store import (
    RETRIES,
    ConcurrentUpdate,
    WorkoutStore,
    versioned_write,
)

from fittracker.storage import Collection, Database, Document, DuplicateKeyError

log = logging.getLogger("fittracker.plugins.workouts")
# How long marked weeks wait before their rebuild: the sets of a burst share one rebuild.
REBUILD_DELAY_S = 0.5

# Weekly volume per muscle: a set fully works its primary muscles and half-works its secondary.
PRIMARY_SHARE = 1.0
SECONDARY_SHARE = 0.5


def week_start(day: str) -> str:
    """The Monday (ISO week start) of a ``YYYY-MM-DD`` date or ISO timestamp."""
    d = date.fromisoformat(day[:10])
    return (d - timedelta(days=d.weekday())).isoformat()


def week_label(monday: str) -> str:
    year, week, _ = date.fromisoformat(monday).isocalendar()
    return f"{year}-W{week:02d}"


def next_week(monday: str) -> str:
    return (date.fromisoformat(monday) + timedelta(days=7)).isoformat()


def user_key(user_id: str, part: str) -> str:
    """One indexed field for "this user's X": the storage indexes serve a single equality best."""
    return f"{user_id}:{part}"


def session_id(workout_id: str, exercise_id: str) -> str:
    return f"{workout_id}:{exercise_id}"


def session_body(
    workout: Mapping[str, Any], exercise_id: str, exercise: Mapping[str, Any] | None
) -> Document:
    """The session document of one exercise in one workout (without its version tag)."""
    sets = [s for s in workout["sets"] if s["exercise_id"] == exercise_id]
    started = str(workout["started_at"])
    return {
        "user_id": workout["user_id"],
        "workout_id": workout["_id"],
        "exercise_id": exercise_id,
        "uex": user_key(workout["user_id"], exercise_id),
        "uweek": user_key(workout["user_id"], week_start(started)),
        "exercise_name": (exercise or {}).get("name") or exercise_id,
        "primary_muscles": list((exercise or {}).get("primary_muscles") or []),
        "secondary_muscles": list((exercise or {}).get("secondary_muscles") or []),
        "live": workout["status"] in ("in_progress", "finished") and bool(sets),
        "finished": workout["status"] == "finished",
        "finished_at": workout.get("finished_at"),
        "started_at": started,
        "date": started[:10],
        "week": week_start(started),
        **session_stats(sets),
    }


# A week's per-exercise row: [exercise_id, volume_kg, work sets, first date, first e1RM,
# last date, last e1RM] (dates/e1RMs of the week's first and last sessions with an estimate).
# Stored as one tab-separated line per exercise in a single string: a two-year summary reads
# ~100 of these documents, and every JSON array parsed is a Python container the garbage
# collector must track (full collections of a busy process cost tens of ms).
ExerciseRow = list[Any]


def encode_rows(rows: list[ExerciseRow]) -> str:
    return "\n".join("\t".join("" if v is None else str(v) for v in row) for row in rows)


def row_key(line: str) -> str:
    return line[: line.index("\t")]


def decode_row(line: str) -> ExerciseRow:
    ex_id, volume, sets, first_day, first_e1rm, last_day, last_e1rm = line.split("\t")
    return [
        ex_id,
        float(volume),
        int(sets),
        first_day or None,
        float(first_e1rm) if first_e1rm else None,
        last_day or None,
        float(last_e1rm) if last_e1rm else None,
    ]


def week_parts(
    user_id: str, monday: str, sessions: list[Document], started: int, finished: int
) -> tuple[Document, list[ExerciseRow]]:
    """A week's roll-up: the slim summary (counts, volume, muscles) and the per-exercise rows."""
    muscles: dict[str, list[float]] = {}
    exercises: dict[str, ExerciseRow] = {}
    for s in sorted(sessions, key=lambda x: (x["started_at"], x["workout_id"])):
        shares = {m: SECONDARY_SHARE for m in s["secondary_muscles"]}
        shares.update(dict.fromkeys(s["primary_muscles"], PRIMARY_SHARE))
        for muscle, share in shares.items():
            acc = muscles.setdefault(muscle, [0.0, 0.0])
            acc[0] += s["volume_kg"] * share
            acc[1] += s["work_sets"] * share
        row = exercises.setdefault(s["exercise_id"], [s["exercise_id"], 0.0, 0, None, None, None, None])
        row[1] += s["volume_kg"]
        row[2] += s["work_sets"]
        if s["best_e1rm"] is not None:
            if row[3] is None:
                row[3:5] = [s["date"], s["best_e1rm"]["value"]]
            row[5:7] = [s["date"], s["best_e1rm"]["value"]]
    for row in exercises.values():
        row[1] = round(row[1], 4)
    summary = {
        "user_id": user_id,
        "week_start": monday,
        "started": started,
        "finished": finished,
        "volume_kg": round(sum(s["volume_kg"] for s in sessions), 4),
        "work_sets": sum(s["work_sets"] for s in sessions),
        "muscles": [
            {"muscle": m, "volume_kg": round(v[0], 4), "sets": round(v[1], 2)}
            for m, v in sorted(muscles.items())
        ],
    }
    return summary, sorted(exercises.values(), key=lambda r: str(r[0]))


async def cas_write(
    coll: Collection,
    doc_id: str,
    field: str,
    compute: Callable[[Document | None], Awaitable[Document | None]],
) -> Document | None:
    """Write ``compute(current)`` conditioned on ``current[field]`` not having moved; retry if it did.

    ``field`` is a counter bumped by every write; ``compute`` returning None means "leave it",
    returning ``{}`` "only bump the counter".
    """
    # Writers in this process take turns: they would only make each other retry. The
    # compare-and-set still guards against other processes.
    async with _turns.hold(f"{coll.name}/{doc_id}"):
        for _ in range(RETRIES):
            current = await coll.find_one({"_id": doc_id})
            body = await compute(current)
            if body is None:
                return current
            if current is None:
                try:
                    return await coll.insert_one({"_id": doc_id, **body, field: 1})
                except DuplicateKeyError:
                    continue
            after = await coll.update_one(
                {"_id": doc_id, field: current[field]}, {"$set": {**body, field: current[field] + 1}}
            )
            if after is not None:
                return after
    raise ConcurrentUpdate(doc_id)


class KeyedLocks:
    """An ``asyncio.Lock`` per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


_turns = KeyedLocks()


class Derived:
    """The ``sessions`` and ``weeks`` read models."""

    def __init__(self, db: Database, workouts: WorkoutStore) -> None:
        self.sessions: Collection = db.collection("sessions")
        self.weeks: Collection = db.collection("weeks")
        self.week_exercises: Collection = db.collection("week_exercises")
        self.dirty: Collection = db.collection("dirty_weeks")
        self._workouts = workouts
        self._queued: set[str] = set()  # marked weeks this process will rebuild soon
        self._rebuilder: asyncio.Task[None] | None = None

    async def create_indexes(self) -> None:
        await self.sessions.create_index([("uex", 1)])
        await self.sessions.create_index([("uex", 1), ("date", 1)])
        await self.sessions.create_index([("uweek", 1)])
        await self.sessions.create_index([("workout_id", 1)])
        await self.dirty.create_index([("user_id", 1)])

    async def close(self) -> None:
        """Stop the background rebuilds (their markers stay, for the next read or start)."""
        if self._rebuilder is not None:
            self._rebuilder.cancel()
            await asyncio.gather(self._rebuilder, return_exceptions=True)

    # --- weeks: marked on change, rebuilt soon or before they are read ------------------------
    async def touch_week(self, user_id: str, day: str) -> None:
        """Mark the week containing ``day`` as out of date and schedule its rebuild."""
        monday = week_start(day)
        doc_id = user_key(user_id, monday)
        await self.dirty.update_one(
            {"_id": doc_id},
            {"$set": {"user_id": user_id, "monday": monday}, "$inc": {"changes": 1}},
            upsert=True,
        )
        self._queued.add(doc_id)
        if self._rebuilder is None or self._rebuilder.done():
            self._rebuilder = asyncio.create_task(self._rebuild_queued(), name="workouts:weeks")

    async def settle(self, user_id: str | None = None) -> int:
        """Rebuild the marked weeks of ``user_id`` (or of everyone) now; returns how many."""
        markers = await self.dirty.find({"user_id": user_id} if user_id is not None else {})
        for marker in markers:
            await self._rebuild_marked(marker)
        return len(markers)

    async def _rebuild_queued(self) -> None:
        while self._queued:
            await asyncio.sleep(REBUILD_DELAY_S)
            queued, self._queued = self._queued, set()
            for doc_id in sorted(queued):
                try:
                    marker = await self.dirty.find_one({"_id": doc_id})
                    if marker is not None:
                        await self._rebuild_marked(marker)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the marker stays: a read or the next start rebuilds it
                    log.exception("rebuilding week %s failed", doc_id)

    async def _rebuild_marked(self, marker: Document) -> None:
        await self.rebuild_week(marker["user_id"], marker["monday"])
        # Only if nothing changed meanwhile: a newer change keeps its marker for another rebuild.
        await self.dirty.delete_one({"_id": marker["_id"], "changes": marker["changes"]})

    async def write_sessions(
        self,
        workout: Mapping[str, Any],
        exercise_ids: Iterable[str],
        exercises: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Rewrite the named exercises' sessions of ``workout`` unless a newer version got there first."""
        version = int(workout["version"])
        for exercise_id in dict.fromkeys(exercise_ids):
            body = session_body(workout, exercise_id, exercises.get(exercise_id))
            await versioned_write(self.sessions, session_id(workout["_id"], exercise_id), version, body)

    async def session_exercises(self, workout_id: str) -> list[str]:
        """Every exercise that ever had a session in this workout (tombstones included)."""
        return [d["exercise_id"] for d in await self.sessions.find({"workout_id": workout_id})]

    async def rebuild_week(self, user_id: str, day: str) -> None:
        """Recompute the week containing ``day`` from its sessions and workouts.

        The slim summary is compare-and-set on ``gen``; the exercise rows follow, versioned by the
        ``gen`` that committed, so they too end up from the latest rebuild.
        """
        monday = week_start(day)
        rows: list[ExerciseRow] = []

        async def compute(_current: Document | None) -> Document:
            sessions = await self.sessions.find({"uweek": user_key(user_id, monday), "live": True})
            start, end = f"{monday}T00:00:00", f"{next_week(monday)}T00:00:00"
            started = await self._workouts.count_started(user_id, start, end)
            finished = await self._workouts.count_started(user_id, start, end, status="finished")
            summary, rows[:] = week_parts(user_id, monday, sessions, started, finished)
            return summary

        doc_id = user_key(user_id, monday)
        committed = await cas_write(self.weeks, doc_id, "gen", compute)
        assert committed is not None
        await versioned_write(self.week_exercises, doc_id, int(committed["gen"]), {"rows": encode_rows(rows)})

    async def history(
        self, user_id: str, exercise_id: str, start: str, end: str, limit: int
    ) -> list[Document]:
        """The exercise's live sessions dated in ``[start, end]``, the latest ``limit``, oldest first."""
        # Only the span asked for is read, newest first (the (uex, date) index): years of
        # history no longer cost a request that wants the last few weeks.
        docs = await self.sessions.find(
            {"uex": user_key(user_id, exercise_id), "date": {"$gte": start, "$lte": end}, "live": True},
            sort=[("started_at", -1), ("_id", -1)],
            limit=limit,
        )
        return docs[::-1]

    async def weeks_between(
        self, user_id: str, first_monday: str, last_monday: str, *, exercises: bool = False
    ) -> list[Document]:
        """The week summaries (or, with ``exercises``, the exercise rows) of a span of weeks."""
        await self.settle(user_id)  # the user's own changes show at once
        # Week ids are "user:monday": a primary-key range, no document is read in vain.
        span = {"$gte": user_key(user_id, first_monday), "$lte": user_key(user_id, last_monday)}
        coll = self.week_exercises if exercises else self.weeks
        return await coll.find({"_id": span}, sort=[("_id", 1)])
