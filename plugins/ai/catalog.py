"""The exercise catalog as the AI sees it, read through the workouts plug-in's public API.

The AI owns no exercise data: it pages ``GET /api/v1/exercises`` through the internal
service client (so it works whether workouts runs in this process, in a worker or on another
host), on behalf of the user whose request needs it, and keeps the built-in exercises for
``catalog_ttl_s`` seconds per process. Custom exercises are never cached (they belong to one
user); the user's own custom exercises come from the read model of their logged sets.

Each exercise gets its :func:`~.patterns.movement_pattern`; equipment names from profiles
("dumbbells", "kettlebell", "bodyweight", "full gym") are mapped onto the catalog's words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from fittracker_plugins.ai.patterns import group_of, movement_pattern

from fittracker import ServiceUnavailable
from fittracker.services import ServiceClient

PAGE = 100
EXERCISES = "/api/v1/exercises"
# Equipment that needs nothing beyond the body (or nothing the catalog names).
FREE = frozenset({"body only", None})
EVERYTHING = "everything"
_SYNONYMS = {
    "dumbbells": "dumbbell",
    "db": "dumbbell",
    "barbells": "barbell",
    "kettlebell": "kettlebells",
    "kb": "kettlebells",
    "band": "bands",
    "resistance band": "bands",
    "resistance bands": "bands",
    "cables": "cable",
    "cable machine": "cable",
    "machines": "machine",
    "ez bar": "e-z curl bar",
    "ez-bar": "e-z curl bar",
    "e-z bar": "e-z curl bar",
    "ez curl bar": "e-z curl bar",
    "bodyweight": "body only",
    "body weight": "body only",
    "none": "body only",
    "swiss ball": "exercise ball",
    "stability ball": "exercise ball",
    "foam roller": "foam roll",
    "gym": EVERYTHING,
    "full gym": EVERYTHING,
    "commercial gym": EVERYTHING,
}


def normalize_equipment(items: Iterable[str]) -> frozenset[str]:
    """Profile equipment in the catalog's words; ``everything`` stands for a full gym."""
    return frozenset(_SYNONYMS.get(item.strip().lower(), item.strip().lower()) for item in items)


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    name: str
    category: str | None
    level: str | None
    force: str | None
    mechanic: str | None
    equipment: str | None
    primary_muscles: tuple[str, ...]
    secondary_muscles: tuple[str, ...]
    pattern: str = field(default="other")

    @property
    def group(self) -> str:
        """push, pull, legs, core or other (see :mod:`.patterns`)."""
        return group_of(self.pattern)

    @property
    def is_lift(self) -> bool:
        """Loaded or bodyweight strength work (not a stretch, cardio or a jump)."""
        return self.category in ("strength", "powerlifting", "olympic weightlifting", "strongman")

    def usable_with(self, equipment: frozenset[str]) -> bool:
        return EVERYTHING in equipment or self.equipment in FREE or self.equipment in equipment

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Exercise:
        primary = tuple(item.get("primary_muscles") or ())
        return cls(
            id=str(item["id"]),
            name=str(item.get("name") or item["id"]),
            category=item.get("category"),
            level=item.get("level"),
            force=item.get("force"),
            mechanic=item.get("mechanic"),
            equipment=item.get("equipment"),
            primary_muscles=primary,
            secondary_muscles=tuple(item.get("secondary_muscles") or ()),
            pattern=movement_pattern(
                str(item.get("name") or ""), item.get("category"), item.get("force"), primary
            ),
        )


@dataclass(frozen=True, slots=True)
class Catalog:
    exercises: tuple[Exercise, ...]
    by_id: Mapping[str, Exercise]

    @classmethod
    def of(cls, exercises: Sequence[Exercise]) -> Catalog:
        return cls(tuple(exercises), {e.id: e for e in exercises})


class CatalogSource:
    """Loads the built-in catalog on first use and again after ``ttl_s``; one load at a time."""

    def __init__(self, services: ServiceClient, ttl_s: float) -> None:
        self._services = services
        self._ttl_s = ttl_s
        self._catalog: Catalog | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, token: str) -> Catalog:
        if self._catalog is not None and time.monotonic() - self._loaded_at < self._ttl_s:
            return self._catalog
        async with self._lock:
            if self._catalog is None or time.monotonic() - self._loaded_at >= self._ttl_s:
                self._catalog = Catalog.of(await self._load(token))
                self._loaded_at = time.monotonic()
            return self._catalog

    async def _load(self, token: str) -> list[Exercise]:
        found: list[Exercise] = []
        offset = 0
        while True:
            path = f"{EXERCISES}?limit={PAGE}&offset={offset}"
            try:
                resp = await self._services.get(path, token=token)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise ServiceUnavailable(f"the exercise catalog could not be read: {exc}") from None
            if not resp.ok or not isinstance(resp.body, Mapping):
                raise ServiceUnavailable(
                    f"the exercise catalog could not be read (GET {EXERCISES} answered {resp.status}); "
                    "is the workouts plug-in running?"
                )
            items = resp.body.get("items") or []
            found += [Exercise.from_api(item) for item in items if not item.get("owner_id")]
            offset += len(items)
            if not items or offset >= int(resp.body.get("total") or 0):
                return found
