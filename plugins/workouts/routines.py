"""Routines storage: users' routines, the built-in templates, ratings and use counts.

Collections of the ``workouts`` database:

- ``routines``: ``{_id, owner_id (None for templates), name, description, visibility,
  is_template, template_version, days, copied_from, rating: {sum, count}, uses, popularity,
  created_at, updated_at}``. Each day is ``{name, exercises: [...]}``; each exercise keeps the
  ``exercise_name`` it had when written (refreshed from the catalog on read when one is given).
- ``routine_ratings``: ``{_id: "<routine_id>:<user_id>", routine_id, user_id, stars,
  created_at, updated_at}``; the composed ``_id`` makes "one rating per user" a storage rule.

Rating aggregates are kept with ``$inc`` deltas (atomic per document), never read-modify-write,
so concurrent ratings by different users all count. ``popularity`` (see :func:`popularity`)
is derived from the counters and only written when the counters it was computed from are
still current, so the last writer always leaves the right score.

Timestamps are ISO 8601 UTC strings with microseconds, so they sort as text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.workouts_store import now_iso

from fittracker.http.pagination import after_cursor, encode_cursor
from fittracker.ids import random_hex
from fittracker.storage import Collection, Database, DuplicateKeyError

Document = dict[str, Any]
Scope = Literal["templates", "mine", "visible"]

# Popularity = Bayesian average of the stars + a bonus that grows with the log of uses.
# The prior (PRIOR_COUNT ratings of PRIOR_MEAN stars) keeps one 5-star vote from beating
# fifty 4.8-star ones; log10 makes use count matter without letting it swamp the stars.
PRIOR_MEAN = 3.0
PRIOR_COUNT = 5
USE_WEIGHT = 0.5
EXERCISE_KEYS = (
    "exercise_id",
    "exercise_name",
    "sets",
    "reps",
    "reps_min",
    "reps_max",
    "duration_s",
    "weight_kg",
    "rest_s",
    "superset",
    "notes",
)


def popularity(stars_sum: int, count: int, uses: int) -> float:
    """``(PRIOR_COUNT*PRIOR_MEAN + sum) / (PRIOR_COUNT + count) + USE_WEIGHT*log10(1 + uses)``."""
    bayes = (PRIOR_COUNT * PRIOR_MEAN + stars_sum) / (PRIOR_COUNT + count)
    return round(bayes + USE_WEIGHT * math.log10(1 + max(uses, 0)), 6)


def average(stars_sum: int, count: int) -> float | None:
    return round(stars_sum / count, 2) if count else None


def exercise_ids(days: Sequence[Mapping[str, Any]]) -> list[str]:
    return [ex["exercise_id"] for day in days for ex in day["exercises"]]


@dataclass(frozen=True, slots=True)
class Rated:
    """The outcome of a rating: the caller's previous stars and the routine's new aggregate."""

    stars: int
    previous_stars: int | None
    average: float | None
    count: int


class RoutineStore:
    """Routines and their ratings. ``catalog`` (optional) refreshes exercise names on read."""

    def __init__(self, db: Database, catalog: Catalog | None = None) -> None:
        self.routines: Collection = db.collection("routines")
        self.ratings: Collection = db.collection("routine_ratings")
        self.catalog = catalog

    async def create_indexes(self) -> None:
        await self.routines.create_index([("owner_id", 1), ("created_at", -1), ("_id", -1)])
        await self.routines.create_index([("visibility", 1), ("is_template", 1), ("created_at", -1)])
        await self.routines.create_index([("popularity", -1), ("uses", -1), ("_id", 1)])
        await self.ratings.create_index([("routine_id", 1)])

    # --- reads ------------------------------------------------------------------------------
    async def get(self, routine_id: str) -> Document | None:
        """The stored document, whoever may see it."""
        return await self.routines.find_one({"_id": routine_id})

    @staticmethod
    def can_see(user_id: str | None, doc: Mapping[str, Any]) -> bool:
        """Templates and public routines are visible to all; private ones to their owner."""
        return (
            bool(doc.get("is_template"))
            or doc.get("visibility") == "public"
            or (user_id is not None and doc.get("owner_id") == user_id)
        )

    async def visible_doc(self, user_id: str, routine_id: str) -> Document | None:
        doc = await self.get(routine_id)
        return doc if doc is not None and self.can_see(user_id, doc) else None

    async def get_visible(self, user_id: str, routine_id: str) -> dict[str, Any] | None:
        """The API-shaped routine (with ``days``) if ``user_id`` may see it (own, public, template)."""
        doc = await self.visible_doc(user_id, routine_id)
        return await self.present(doc) if doc is not None else None

    async def present(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """A stored routine as the API shows it."""
        return (await self.present_many([doc]))[0]

    async def present_many(self, docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self._view(doc, await self._names(doc)) for doc in docs]

    async def _names(self, doc: Mapping[str, Any]) -> dict[str, str]:
        # A routine may use its owner's custom exercises: resolve them as the owner sees them.
        if self.catalog is None:
            return {}
        ids = exercise_ids(doc.get("days") or [])
        owner = doc.get("owner_id") or ""
        found = await self.catalog.get_many(owner, ids)
        return {ex_id: str(ex["name"]) for ex_id, ex in found.items()}

    @staticmethod
    def _view(doc: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
        rating = doc.get("rating") or {}
        count = int(rating.get("count", 0))
        days = []
        for day in doc.get("days") or []:
            exercises = []
            for ex in day["exercises"]:
                item = {key: ex.get(key) for key in EXERCISE_KEYS}
                item["exercise_name"] = names.get(ex["exercise_id"], ex.get("exercise_name") or "")
                exercises.append(item)
            days.append({"name": day["name"], "exercises": exercises})
        return {
            "id": doc["_id"],
            "owner_id": doc.get("owner_id"),
            "name": doc["name"],
            "description": doc.get("description"),
            "visibility": doc.get("visibility", "private"),
            "is_template": bool(doc.get("is_template")),
            "days": days,
            "copied_from": doc.get("copied_from"),
            "rating": {"average": average(int(rating.get("sum", 0)), count), "count": count},
            "uses": int(doc.get("uses", 0)),
            "popularity": float(doc.get("popularity", popularity(0, 0, 0))),
            "created_at": doc["created_at"],
            "updated_at": doc["updated_at"],
        }

    async def page(
        self, user_id: str, scope: Scope, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """A page of routines: templates by name; own (and public) ones newest first."""
        if scope == "templates":
            where: Mapping[str, Any] = {"is_template": True}
            key, descending = "name", False
        elif scope == "mine":
            where, key, descending = {"owner_id": user_id}, "created_at", True
        else:
            where = {"$or": [{"owner_id": user_id}, {"visibility": "public", "is_template": False}]}
            key, descending = "created_at", True
        clauses = [where, *after_cursor(key, "_id", cursor, descending=descending)]
        order = -1 if descending else 1
        docs = await self.routines.find(
            {"$and": clauses}, sort=[(key, order), ("_id", order)], limit=limit + 1
        )
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor(str(docs[-1][key]), docs[-1]["_id"])
        return docs, next_cursor

    async def popular(self, limit: int, offset: int) -> tuple[list[Document], int]:
        """Templates and public routines by popularity, then uses, then id (deterministic)."""
        where = {"$or": [{"is_template": True}, {"visibility": "public"}]}
        docs = await self.routines.find(
            where, sort=[("popularity", -1), ("uses", -1), ("_id", 1)], limit=limit, skip=offset
        )
        return docs, await self.routines.count(where)

    # --- writes -----------------------------------------------------------------------------
    @staticmethod
    def _fresh(fields: Mapping[str, Any]) -> Document:
        now = now_iso()
        return {
            "description": None,
            "visibility": "private",
            "copied_from": None,
            **fields,
            "rating": {"sum": 0, "count": 0},
            "uses": 0,
            "popularity": popularity(0, 0, 0),
            "created_at": now,
            "updated_at": now,
        }

    async def create(self, owner_id: str, fields: Mapping[str, Any]) -> Document:
        """A new routine of ``owner_id``; ``fields`` are validated (name, description, visibility, days)."""
        doc = self._fresh({**fields, "owner_id": owner_id, "is_template": False})
        doc["_id"] = random_hex()
        return await self.routines.insert_one(doc)

    async def update(self, owner_id: str, routine_id: str, changes: Mapping[str, Any]) -> Document | None:
        """Apply validated ``changes`` to an own, non-template routine; None if there is none."""
        return await self.routines.update_one(
            {"_id": routine_id, "owner_id": owner_id, "is_template": False},
            {"$set": {**changes, "updated_at": now_iso()}},
        )

    async def delete(self, owner_id: str, routine_id: str) -> bool:
        """Delete an own routine and its ratings."""
        gone = await self.routines.delete_one({"_id": routine_id, "owner_id": owner_id, "is_template": False})
        if gone:
            await self.ratings.delete_many({"routine_id": routine_id})
        return gone == 1

    async def copy(self, user_id: str, source: Mapping[str, Any]) -> Document:
        """A private copy of ``source`` owned by ``user_id`` (fresh ratings and uses)."""
        fields = {
            "name": source["name"],
            "description": source.get("description"),
            "days": source["days"],
            "visibility": "private",
            "copied_from": source["_id"],
        }
        return await self.create(user_id, fields)

    async def put_template(self, template_id: str, version: int, fields: Mapping[str, Any]) -> bool:
        """Insert or upgrade a built-in template; keeps its ratings and uses. True if it wrote."""
        current = await self.get(template_id)
        if current is not None and current.get("template_version") == version:
            return False
        if current is None:
            doc = self._fresh({**fields, "owner_id": None, "is_template": True, "visibility": "public"})
            doc.update(_id=template_id, template_version=version)
            try:
                await self.routines.insert_one(doc)
                return True
            except DuplicateKeyError:  # another worker seeded it first: upgrade below if needed
                pass
        await self.routines.update_one(
            {"_id": template_id, "template_version": {"$ne": version}},
            {"$set": {**fields, "template_version": version, "updated_at": now_iso()}},
        )
        return True

    async def record_use(self, routine_id: str) -> None:
        """Count one use of a routine (a workout started from it); feeds :meth:`popular`."""
        doc = await self.routines.update_one({"_id": routine_id}, {"$inc": {"uses": 1}})
        if doc is not None:
            await self._refresh_popularity(doc)

    # --- ratings ----------------------------------------------------------------------------
    async def rating_of(self, user_id: str, routine_id: str) -> Document | None:
        return await self.ratings.find_one({"_id": f"{routine_id}:{user_id}"})

    async def rate(self, user_id: str, routine_id: str, stars: int) -> Rated | None:
        """Set the user's stars for a routine; None if the routine vanished meanwhile."""
        key = f"{routine_id}:{user_id}"
        previous: int | None = None
        while True:  # retries only when the same user changes this rating concurrently
            current = await self.ratings.find_one({"_id": key})
            now = now_iso()
            if current is None:
                row = {"_id": key, "routine_id": routine_id, "user_id": user_id, "stars": stars}
                try:
                    await self.ratings.insert_one({**row, "created_at": now, "updated_at": now})
                except DuplicateKeyError:
                    continue
                previous = None
                break
            previous = int(current["stars"])
            changed = await self.ratings.update_one(
                {"_id": key, "stars": previous}, {"$set": {"stars": stars, "updated_at": now}}
            )
            if changed is not None:
                break
        delta_sum = stars - (previous or 0)
        delta_count = 1 if previous is None else 0
        doc = await self.routines.update_one(
            {"_id": routine_id}, {"$inc": {"rating.sum": delta_sum, "rating.count": delta_count}}
        )
        if doc is None:
            await self.ratings.delete_one({"_id": key})
            return None
        await self._refresh_popularity(doc)
        count = int(doc["rating"]["count"])
        return Rated(stars, previous, average(int(doc["rating"]["sum"]), count), count)

    async def _refresh_popularity(self, doc: Mapping[str, Any]) -> None:
        rating = doc.get("rating") or {}
        stars_sum, count, uses = (
            int(rating.get("sum", 0)),
            int(rating.get("count", 0)),
            int(doc.get("uses", 0)),
        )
        score = popularity(stars_sum, count, uses)
        if doc.get("popularity") == score:
            return
        # Only if the counters are still those the score came from; a newer write sets its own.
        await self.routines.update_one(
            {"_id": doc["_id"], "rating.sum": stars_sum, "rating.count": count, "uses": uses},
            {"$set": {"popularity": score}},
        )
