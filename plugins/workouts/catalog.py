"""The exercise catalog: the shipped built-ins plus each user's own custom exercises.

The built-in catalog ships as ``data/catalog.json`` (built by ``scripts/build_catalog.py``
from the public-domain Free Exercise DB). On start it is written into the plug-in's database
once per catalog version (idempotent; a new version upgrades the stored copy, and built-ins
that disappeared are kept as ``retired`` so old workouts still resolve them). Reads of
built-ins are served from memory: the catalog is small (873 entries) and read on every
search, set and routine. Custom exercises live only in the database, visible to their owner.

Searches are answered from memory: the built-ins matching a filter are worked out once per
filter (they change only at start-up), and each user's custom exercises are kept per process
(:class:`CustomCache`), dropped whenever they change here or another process announces a
change with ``exercise.custom_changed``, and after a minute at most.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from fittracker.ids import random_hex
from fittracker.storage import Collection, Database, DuplicateKeyError

Exercise = dict[str, Any]

FIELDS = (
    "name",
    "category",
    "level",
    "force",
    "mechanic",
    "equipment",
    "primary_muscles",
    "secondary_muscles",
)
CUSTOM_PREFIX = "custom-"
CUSTOM_CHANGED = "exercise.custom_changed"  # {user_id, exercise_id, change}: caches drop the user's
_WORD = re.compile(r"[a-z0-9]+")
_MATCHES_KEPT = 2048  # distinct search filters remembered (then the memo starts afresh)

Announce = Callable[[str, str, str], Awaitable[None]]  # (user_id, exercise_id, change)


def words_of(text: str) -> list[str]:
    """Lower-cased alphanumeric words, for word-prefix search ("Push-Up" -> push, up)."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))


def public_view(doc: Mapping[str, Any]) -> Exercise:
    """An exercise as the API shows it (``owner_id`` only on custom ones)."""
    out: Exercise = {"id": doc["_id"] if "_id" in doc else doc["id"]}
    out.update({field: doc.get(field) for field in FIELDS})
    out["primary_muscles"] = list(out["primary_muscles"] or [])
    out["secondary_muscles"] = list(out["secondary_muscles"] or [])
    if doc.get("owner_id"):
        out["owner_id"] = doc["owner_id"]
    return out


@dataclass(frozen=True, slots=True)
class Shipped:
    version: str
    exercises: list[Exercise]

    @classmethod
    def load(cls) -> Shipped:
        raw = resources.files("fittracker_plugins.workouts").joinpath("data/catalog.json").read_text("utf-8")
        data = json.loads(raw)
        return cls(version=str(data["version"]), exercises=list(data["exercises"]))


@dataclass(frozen=True, slots=True)
class SearchFilter:
    q: str | None = None
    category: str | None = None
    muscle: str | None = None
    equipment: str | None = None
    level: str | None = None

    def matches(self, ex: Mapping[str, Any], terms: Sequence[str]) -> bool:
        if self.category and ex["category"] != self.category:
            return False
        if self.level and ex["level"] != self.level:
            return False
        if self.equipment and ex["equipment"] != self.equipment:
            return False
        if (
            self.muscle
            and self.muscle not in ex["primary_muscles"]
            and self.muscle not in ex["secondary_muscles"]
        ):
            return False
        if terms:
            words = ex["_words"]
            return all(any(w.startswith(t) for w in words) for t in terms)
        return True


class CustomCache:
    """Users' custom exercises in this process, for searches.

    An entry is dropped when the user's custom exercises change (in this process, or announced
    by another) and is trusted for ``ttl_s`` at most, in case an announcement was missed. A read
    that raced with a change is not kept: every change bumps ``generation``, and a read keeps
    its result only if the generation it started under is still current.
    """

    def __init__(self, max_users: int = 10_000, ttl_s: float = 60.0) -> None:
        self._entries: OrderedDict[str, tuple[float, list[Exercise]]] = OrderedDict()
        self._max_users = max_users
        self._ttl_s = ttl_s
        self.generation = 0

    def get(self, user_id: str) -> list[Exercise] | None:
        entry = self._entries.get(user_id)
        if entry is None or entry[0] <= time.monotonic():
            return None
        self._entries.move_to_end(user_id)
        return entry[1]

    def put(self, user_id: str, generation: int, exercises: list[Exercise]) -> None:
        if generation != self.generation:
            return  # something changed while it was read: it may be stale
        self._entries[user_id] = (time.monotonic() + self._ttl_s, exercises)
        self._entries.move_to_end(user_id)
        while len(self._entries) > self._max_users:
            self._entries.popitem(last=False)

    def forget(self, user_id: str | None = None) -> None:
        """Drop one user's entry, or (None) everyone's."""
        self.generation += 1
        if user_id is None:
            self._entries.clear()
        else:
            self._entries.pop(user_id, None)


class Catalog:
    """Built-in exercises (memory, from the database) and custom ones (database)."""

    def __init__(
        self, db: Database, shipped: Shipped | None = None, announce: Announce | None = None
    ) -> None:
        self._shipped = shipped or Shipped.load()
        self.exercises: Collection = db.collection("exercises")
        self.meta: Collection = db.collection("meta")
        self._builtin: dict[str, Exercise] = {}
        self._active: list[Exercise] = []  # built-ins not retired, sorted by name
        self._matches: dict[SearchFilter, tuple[Exercise, ...]] = {}  # shared: never mutated
        self.custom = CustomCache()
        self._announce = announce
        self.version = ""

    # --- start-up -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.exercises.create_index([("owner_id", 1)])
        await self.upgrade()
        await self.reload()

    async def upgrade(self) -> bool:
        """Store the shipped catalog if the stored version differs; True if it wrote."""
        meta = await self.meta.find_one({"_id": "catalog"})
        if meta is not None and meta.get("version") == self._shipped.version:
            return False
        shipped_ids = set()
        stored = await self.exercises.count({"builtin": True})
        docs = [self._doc(ex) for ex in self._shipped.exercises]
        first = stored == 0
        if first:
            try:
                await self.exercises.insert_many(docs)  # first start: one transaction
                shipped_ids = {d["_id"] for d in docs}
            except DuplicateKeyError:
                first = False  # another worker loaded it at the same moment: upsert instead
        if not first:
            for doc in docs:
                fields = {k: v for k, v in doc.items() if k != "_id"}
                await self.exercises.update_one({"_id": doc["_id"]}, {"$set": fields}, upsert=True)
                shipped_ids.add(doc["_id"])
            for old in await self.exercises.find({"builtin": True, "retired": False}):
                if old["_id"] not in shipped_ids:
                    await self.exercises.update_one({"_id": old["_id"]}, {"$set": {"retired": True}})
        await self.meta.update_one(
            {"_id": "catalog"},
            {"$set": {"version": self._shipped.version, "loaded_at": datetime.now(UTC).isoformat()}},
            upsert=True,
        )
        return True

    async def reload(self) -> None:
        """Fill the in-memory copy of the built-ins from the database."""
        docs = await self.exercises.find({"builtin": True})
        self._builtin = {d["_id"]: self._cached(d) for d in docs}
        self._active = sorted(
            (e for e in self._builtin.values() if not e["_retired"]),
            key=lambda e: (e["name"].lower(), e["id"]),
        )
        self._matches = {}
        meta = await self.meta.find_one({"_id": "catalog"})
        self.version = str((meta or {}).get("version", ""))

    @staticmethod
    def _doc(ex: Mapping[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {"_id": ex["id"], **{f: ex.get(f) for f in FIELDS}}
        doc.update(builtin=True, retired=False, owner_id=None, words=words_of(ex["name"]))
        return doc

    @staticmethod
    def _cached(doc: Mapping[str, Any]) -> Exercise:
        ex = public_view(doc)
        ex["_words"] = tuple(doc.get("words") or words_of(ex["name"]))
        ex["_retired"] = bool(doc.get("retired"))
        return ex

    # --- reads --------------------------------------------------------------------------------
    @staticmethod
    def strip(ex: Mapping[str, Any]) -> Exercise:
        return {k: v for k, v in ex.items() if not k.startswith("_")}

    def builtin(self, exercise_id: str) -> Exercise | None:
        ex = self._builtin.get(exercise_id)
        return self.strip(ex) if ex is not None else None

    def is_active(self, exercise_id: str) -> bool:
        """Whether ``exercise_id`` is a built-in of the current catalog version (not retired)."""
        ex = self._builtin.get(exercise_id)
        return ex is not None and not ex["_retired"]

    async def _custom_docs(self, user_id: str) -> list[Exercise]:
        found = self.custom.get(user_id)
        if found is None:
            generation = self.custom.generation
            docs = await self.exercises.find({"owner_id": user_id}, sort=[("name", 1)])
            found = [self._cached(d) for d in docs]
            self.custom.put(user_id, generation, found)
        return found

    def _builtin_matches(self, flt: SearchFilter) -> tuple[Exercise, ...]:
        """The active built-ins matching ``flt``, by name, as the API shows them (memoised)."""
        found = self._matches.get(flt)
        if found is None:
            terms = words_of(flt.q or "")
            found = tuple(self.strip(ex) for ex in self._active if flt.matches(ex, terms))
            if len(self._matches) >= _MATCHES_KEPT:
                self._matches = {}
            self._matches[flt] = found
        return found

    async def _changed(self, user_id: str, exercise_id: str, change: str) -> None:
        self.custom.forget(user_id)
        if self._announce is not None:
            await self._announce(user_id, exercise_id, change)

    async def visible(self, user_id: str, exercise_id: str) -> Exercise | None:
        """The exercise if it is a built-in or the user's own custom one; else None."""
        ex = self._builtin.get(exercise_id)
        if ex is not None:
            return self.strip(ex)
        if not exercise_id.startswith(CUSTOM_PREFIX):
            return None
        doc = await self.exercises.find_one({"_id": exercise_id, "owner_id": user_id})
        return public_view(doc) if doc is not None else None

    async def get_many(self, user_id: str, ids: Iterable[str]) -> dict[str, Exercise]:
        """The visible exercises among ``ids`` (missing or foreign ones are left out)."""
        out: dict[str, Exercise] = {}
        custom: list[str] = []
        for exercise_id in set(ids):
            ex = self._builtin.get(exercise_id)
            if ex is not None:
                out[exercise_id] = self.strip(ex)
            elif exercise_id.startswith(CUSTOM_PREFIX):
                custom.append(exercise_id)
        if custom:
            for doc in await self.exercises.find({"_id": {"$in": custom}, "owner_id": user_id}):
                out[doc["_id"]] = public_view(doc)
        return out

    async def search(
        self, user_id: str | None, flt: SearchFilter, limit: int, offset: int
    ) -> tuple[list[Exercise], int]:
        """Matching exercises (the user's custom ones first, then built-ins by name) and the total."""
        terms = words_of(flt.q or "")
        pool = (await self._custom_docs(user_id)) if user_id else []
        mine = [self.strip(ex) for ex in pool if flt.matches(ex, terms)]
        builtins = self._builtin_matches(flt)
        end = offset + limit if limit else None
        if not mine:
            return list(builtins[offset:end]), len(builtins)
        matched = [*mine, *builtins]
        return matched[offset:end], len(matched)

    async def facets(self, user_id: str | None, flt: SearchFilter | None = None) -> dict[str, dict[str, int]]:
        """Counts per category, muscle (primary or secondary), equipment and level."""
        flt = flt or SearchFilter()
        terms = words_of(flt.q or "")
        pool = [*((await self._custom_docs(user_id)) if user_id else []), *self._active]
        counts: dict[str, Counter[str]] = {k: Counter() for k in ("category", "muscle", "equipment", "level")}
        for ex in pool:
            if not flt.matches(ex, terms):
                continue
            for key in ("category", "equipment", "level"):
                if ex[key]:
                    counts[key][ex[key]] += 1
            for muscle in {*ex["primary_muscles"], *ex["secondary_muscles"]}:
                counts["muscle"][muscle] += 1
        return {key: dict(sorted(c.items())) for key, c in counts.items()}

    # --- custom exercises ---------------------------------------------------------------------
    async def create_custom(self, user_id: str, fields: Mapping[str, Any]) -> Exercise:
        doc: dict[str, Any] = {"_id": CUSTOM_PREFIX + random_hex(), **{f: fields.get(f) for f in FIELDS}}
        doc.update(builtin=False, retired=False, owner_id=user_id, words=words_of(str(fields["name"])))
        doc["created_at"] = datetime.now(UTC).isoformat(timespec="microseconds")
        created = public_view(await self.exercises.insert_one(doc))
        await self._changed(user_id, created["id"], "created")
        return created

    async def update_custom(
        self, user_id: str, exercise_id: str, fields: Mapping[str, Any]
    ) -> Exercise | None:
        changes = {f: fields[f] for f in FIELDS if f in fields}
        if "name" in changes:
            changes["words"] = words_of(str(changes["name"]))
        if not exercise_id.startswith(CUSTOM_PREFIX):
            return None
        if not changes:
            return await self.visible(user_id, exercise_id)
        doc = await self.exercises.update_one({"_id": exercise_id, "owner_id": user_id}, {"$set": changes})
        if doc is None:
            return None
        await self._changed(user_id, exercise_id, "updated")
        return public_view(doc)

    async def delete_custom(self, user_id: str, exercise_id: str) -> bool:
        if not exercise_id.startswith(CUSTOM_PREFIX):
            return False
        if await self.exercises.delete_one({"_id": exercise_id, "owner_id": user_id}) != 1:
            return False
        await self._changed(user_id, exercise_id, "deleted")
        return True
