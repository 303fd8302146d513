"""The shipped catalog: first load, idempotent restarts, upgrades; and the templates' exercises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.workouts.catalog import Catalog, SearchFilter, Shipped
from fittracker_plugins.workouts.models_catalog import VOCAB
from fittracker_plugins.workouts.templates import TEMPLATES, check_templates, template_exercise_ids

from tests.conftest import MakeClient
from tests.workouts.conftest import OpenLibraryDb, library_config, signed_in

BENCH = "Barbell_Bench_Press_-_Medium_Grip"


async def test_first_start_loads_every_exercise(open_library_db: OpenLibraryDb) -> None:
    shipped = Shipped.load()
    catalog = Catalog(open_library_db())
    await catalog.start()
    assert len(shipped.exercises) == 873
    assert await catalog.exercises.count({"builtin": True}) == 873
    assert catalog.version == shipped.version
    _, total = await catalog.search(None, SearchFilter(), limit=1, offset=0)
    assert total == 873
    bench = catalog.builtin(BENCH)
    assert bench is not None and bench["name"] == "Barbell Bench Press - Medium Grip"
    assert not any(key.startswith("_") for key in bench)


async def test_two_workers_loading_at_once(open_library_db: OpenLibraryDb) -> None:
    """Two processes starting on an empty database: neither fails, nothing is doubled."""
    import asyncio

    first, second = Catalog(open_library_db()), Catalog(open_library_db())
    await asyncio.gather(first.start(), second.start())
    assert await first.exercises.count({}) == 873
    assert first.version == second.version
    assert second.builtin(BENCH) is not None


async def test_restart_is_idempotent(open_library_db: OpenLibraryDb) -> None:
    first = Catalog(open_library_db())
    await first.start()
    loaded_at = (await first.meta.find_one({"_id": "catalog"}) or {})["loaded_at"]
    again = Catalog(open_library_db())  # a second process on the same data
    assert await again.upgrade() is False
    await again.reload()
    assert await again.exercises.count({}) == 873
    assert again.version == first.version
    assert (await again.meta.find_one({"_id": "catalog"}) or {})["loaded_at"] == loaded_at


async def test_new_version_updates_and_retires(open_library_db: OpenLibraryDb) -> None:
    await Catalog(open_library_db()).start()
    shipped = Shipped.load()
    removed = "Adductor"
    changed = [
        {**ex, "name": "Bench Press (Medium Grip)", "level": "intermediate"} if ex["id"] == BENCH else ex
        for ex in shipped.exercises
        if ex["id"] != removed
    ]
    upgraded = Catalog(open_library_db(), Shipped(version="test-2", exercises=changed))
    await upgraded.start()
    assert upgraded.version == "test-2"
    bench = upgraded.builtin(BENCH)
    assert bench is not None and (bench["name"], bench["level"]) == (
        "Bench Press (Medium Grip)",
        "intermediate",
    )
    found, _ = await upgraded.search(None, SearchFilter(q="medium grip bench"), limit=10, offset=0)
    assert BENCH in {ex["id"] for ex in found}
    # Retired, not deleted: old workouts still resolve it, but search no longer offers it.
    assert upgraded.builtin(removed) is not None and not upgraded.is_active(removed)
    _, total = await upgraded.search(None, SearchFilter(), limit=1, offset=0)
    assert total == 872
    assert await upgraded.exercises.count({}) == 873
    assert await upgraded.exercises.count({"retired": True}) == 1


async def test_the_app_loads_once_per_data_dir(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    totals = []
    for _ in range(2):
        client: TestClient[Any, Any] = await make_client(
            plugins=["users", "workouts"], config=library_config(), data_dir=data_dir
        )
        me = await signed_in(client)
        resp = await client.get("/api/v1/exercises", params={"limit": 1}, headers=me.headers)
        totals.append((await resp.json())["total"])
        templates = await client.get("/api/v1/routines", params={"template": "true"}, headers=me.headers)
        totals.append(len((await templates.json())["items"]))
    assert totals == [873, len(TEMPLATES)] * 2


def test_vocabulary_comes_from_the_shipped_data() -> None:
    assert "strength" in VOCAB.category and "cardio" in VOCAB.category
    assert VOCAB.level == ("beginner", "expert", "intermediate")
    assert VOCAB.force == ("pull", "push", "static")
    assert "body only" in VOCAB.equipment and None not in VOCAB.equipment
    assert len(VOCAB.muscle) == 17


def test_templates_use_shipped_exercises() -> None:
    shipped = {ex["id"] for ex in Shipped.load().exercises}
    assert template_exercise_ids() <= shipped
    ids = {t.id for t in TEMPLATES}
    assert len(ids) == len(TEMPLATES)
    assert {
        "template-beginner-full-body",
        "template-hiit",
        "template-powerlifting-5x5",
        "template-push-pull-legs",
        "template-upper-lower",
    } <= ids


async def test_start_up_check_rejects_unknown_template_exercises(open_library_db: OpenLibraryDb) -> None:
    shipped = Shipped.load()
    gone = sorted(template_exercise_ids())[0]
    catalog = Catalog(
        open_library_db(), Shipped(shipped.version, [e for e in shipped.exercises if e["id"] != gone])
    )
    await catalog.start()
    with pytest.raises(RuntimeError, match=gone):
        check_templates(catalog)
