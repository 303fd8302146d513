"""The routines API: templates, CRUD and visibility, copies, ratings, popular, events."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp.test_utils import TestClient
from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.routines import RoutineStore, popularity
from fittracker_plugins.workouts.templates import TEMPLATES, seed_templates

from tests.workouts.conftest import LibraryEventRecorder, OpenLibraryDb, SignedIn, signed_in

Client = TestClient[Any, Any]
BENCH = "Barbell_Bench_Press_-_Medium_Grip"
BASE = "/api/v1/routines"


def routine(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "My Split",
        "description": "push and legs",
        "days": [
            {
                "name": "Push",
                "exercises": [
                    {"exercise_id": BENCH, "sets": 3, "reps": 8, "weight_kg": 60, "rest_s": 120},
                    {"exercise_id": "Side_Lateral_Raise", "sets": 3, "reps_min": 12, "reps_max": 15},
                    {"exercise_id": "Triceps_Pushdown", "sets": 3, "reps": 12, "superset": "A"},
                    {"exercise_id": "Barbell_Curl", "sets": 3, "reps": 12, "superset": "A", "notes": "slow"},
                ],
            },
            {"name": "Legs", "exercises": [{"exercise_id": "Plank", "sets": 3, "duration_s": 45}]},
        ],
    }
    return {**body, **overrides}


async def create(client: Client, user: SignedIn, **overrides: Any) -> dict[str, Any]:
    resp = await client.post(BASE, json=routine(**overrides), headers=user.headers)
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def rate(client: Client, user: SignedIn, routine_id: str, stars: int) -> dict[str, Any]:
    resp = await client.put(f"{BASE}/{routine_id}/rating", json={"stars": stars}, headers=user.headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_templates_are_seeded(library_client: Client) -> None:
    me = await signed_in(library_client)
    resp = await library_client.get(BASE, params={"template": "true"}, headers=me.headers)
    items = (await resp.json())["items"]
    assert {t["id"] for t in items} == {t.id for t in TEMPLATES}
    assert [t["name"] for t in items] == sorted(t["name"] for t in items)
    by_id = {t["id"]: t for t in items}
    beginner = by_id["template-beginner-full-body"]
    assert len(beginner["days"]) == 3 and beginner["owner_id"] is None and beginner["is_template"]
    assert [d["name"] for d in by_id["template-powerlifting-5x5"]["days"]] == ["Workout A", "Workout B"]
    squat = by_id["template-powerlifting-5x5"]["days"][0]["exercises"][0]
    assert (squat["exercise_name"], squat["sets"], squat["reps"]) == ("Barbell Squat", 5, 5)
    assert all(e["exercise_name"] for t in items for d in t["days"] for e in d["exercises"])
    one = await library_client.get(f"{BASE}/template-hiit", headers=me.headers)
    assert (await one.json())["days"][0]["exercises"][0]["duration_s"] == 40


async def test_seeding_is_idempotent_and_follows_versions(open_library_db: OpenLibraryDb) -> None:
    db = open_library_db()
    catalog = Catalog(db)
    await catalog.start()
    store = RoutineStore(db, catalog)
    assert await seed_templates(store, catalog) == len(TEMPLATES)
    assert await seed_templates(store, catalog) == 0
    assert await store.routines.count({"is_template": True}) == len(TEMPLATES)
    await store.rate("someone", "template-hiit", 4)
    changed = {
        "name": "HIIT v2",
        "description": None,
        "days": (await store.get("template-hiit") or {})["days"],
    }
    assert await store.put_template("template-hiit", TEMPLATES[1].version + 1, changed)
    doc = await store.get("template-hiit")
    assert doc is not None and doc["name"] == "HIIT v2" and doc["rating"] == {"sum": 4, "count": 1}
    assert await store.routines.count({"is_template": True}) == len(TEMPLATES)


async def test_create_read_update_delete(library_client: Client) -> None:
    me = await signed_in(library_client)
    created = await create(library_client, me)
    assert created["owner_id"] == me.user_id and created["visibility"] == "private"
    assert created["rating"] == {"average": None, "count": 0} and created["uses"] == 0
    push = created["days"][0]["exercises"]
    assert push[0]["exercise_name"] == "Barbell Bench Press - Medium Grip" and push[0]["weight_kg"] == 60
    assert (push[1]["reps"], push[1]["reps_min"], push[1]["reps_max"], push[1]["rest_s"]) == (
        None,
        12,
        15,
        90,
    )
    assert [e["superset"] for e in push] == [None, None, "A", "A"]
    path = f"{BASE}/{created['id']}"
    assert await (await library_client.get(path, headers=me.headers)).json() == created

    days = [{"name": "Only", "exercises": [{"exercise_id": "Pullups", "sets": 5, "reps": 5}]}]
    resp = await library_client.patch(
        path,
        json={"name": "Renamed", "description": None, "visibility": "public", "days": days},
        headers=me.headers,
    )
    assert resp.status == 200, await resp.text()
    updated = await resp.json()
    assert (updated["name"], updated["description"], updated["visibility"]) == ("Renamed", None, "public")
    assert updated["days"][0]["exercises"][0]["exercise_name"] == "Pullups"
    assert updated["created_at"] == created["created_at"] and updated["updated_at"] > created["updated_at"]

    assert (await library_client.delete(path, headers=me.headers)).status == 204
    assert (await library_client.get(path, headers=me.headers)).status == 404


async def test_validation_names_the_field(library_client: Client) -> None:
    me = await signed_in(library_client)
    other = await signed_in(library_client, "Other")
    custom = await library_client.post(
        "/api/v1/exercises",
        json={"name": "Secret Move", "category": "strength", "primary_muscles": ["chest"]},
        headers=other.headers,
    )
    foreign = (await custom.json())["id"]
    good = routine()["days"][0]

    def with_exercise(index: int, **fields: Any) -> list[dict[str, Any]]:
        exercises = [dict(e) for e in good["exercises"]]
        exercises[index] = {**exercises[index], **fields}
        return [{"name": "Push", "exercises": exercises}]

    cases: list[tuple[dict[str, Any], str]] = [
        ({"days": with_exercise(2, exercise_id="Nope")}, "days.0.exercises.2.exercise_id"),
        ({"days": with_exercise(1, exercise_id=foreign)}, "days.0.exercises.1.exercise_id"),
        ({"days": with_exercise(0, reps_min=5, reps_max=8)}, "days.0.exercises.0"),
        ({"days": with_exercise(1, reps_min=15, reps_max=12)}, "days.0.exercises.1"),
        ({"days": with_exercise(0, reps=None)}, "days.0.exercises.0"),
        ({"days": with_exercise(0, sets=21)}, "days.0.exercises.0.sets"),
        ({"days": with_exercise(0, reps=101)}, "days.0.exercises.0.reps"),
        ({"days": with_exercise(0, rest_s=901)}, "days.0.exercises.0.rest_s"),
        ({"days": with_exercise(0, sets=2.5)}, "days.0.exercises.0.sets"),
        ({"days": with_exercise(0, superset="A")}, "days.0.exercises.2.superset"),  # A, -, A, A
        ({"days": with_exercise(1, superset="B")}, "days.0.exercises.1.superset"),  # a group of one
        ({"days": []}, "days"),
        ({"days": [good] * 8}, "days"),
        ({"days": [{"name": "Big", "exercises": good["exercises"] * 6}]}, "days.0.exercises"),
        ({"name": ""}, "name"),
        ({"visibility": "friends"}, "visibility"),
    ]
    for overrides, field in cases:
        resp = await library_client.post(BASE, json=routine(**overrides), headers=me.headers)
        assert resp.status == 422, (overrides, await resp.text())
        assert field in [e["field"] for e in (await resp.json())["errors"]], (field, await resp.text())
    listed = await library_client.get(BASE, params={"mine": "true"}, headers=me.headers)
    assert (await listed.json())["items"] == []


async def test_visibility_matrix(library_client: Client) -> None:
    owner = await signed_in(library_client, "Owner")
    other = await signed_in(library_client, "Other")
    private = await create(library_client, owner, name="Private")
    public = await create(library_client, owner, name="Public", visibility="public")

    def path(routine_id: str, suffix: str = "") -> str:
        return f"{BASE}/{routine_id}{suffix}"

    async def status(method: str, url: str, user: SignedIn, body: Any = None) -> int:
        resp = await library_client.request(method, url, json=body, headers=user.headers)
        return resp.status

    # Another user's private routine does not exist for them.
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("POST", "/copy", None),
        ("PUT", "/rating", {"stars": 5}),
        ("GET", "/rating", None),
    ]:
        assert await status(method, path(private["id"], suffix), other, body) == 404, (method, suffix)
    # A public one can be read, copied and rated, not changed.
    assert await status("GET", path(public["id"]), other) == 200
    assert await status("PATCH", path(public["id"]), other, {"name": "x"}) == 403
    assert await status("DELETE", path(public["id"]), other) == 403
    assert await status("POST", path(public["id"], "/copy"), other) == 201
    assert await status("PUT", path(public["id"], "/rating"), other, {"stars": 4}) == 200
    # Templates are read-only for everybody.
    resp = await library_client.patch(path("template-hiit"), json={"name": "x"}, headers=owner.headers)
    assert resp.status == 403 and "read-only" in (await resp.json())["detail"]
    assert await status("DELETE", path("template-hiit"), owner) == 403
    # The owner may do everything but rate their own routines.
    assert await status("GET", path(private["id"]), owner) == 200
    assert await status("PUT", path(public["id"], "/rating"), owner, {"stars": 5}) == 403
    assert await status("PATCH", path(private["id"]), owner, {"visibility": "public"}) == 200
    assert await status("GET", path(private["id"]), other) == 200


async def test_lists(library_client: Client) -> None:
    owner = await signed_in(library_client, "Owner")
    other = await signed_in(library_client, "Other")
    mine = [await create(library_client, owner, name=f"Mine {n}") for n in range(3)]
    theirs_public = await create(library_client, other, name="Theirs public", visibility="public")
    await create(library_client, other, name="Theirs private")

    async def ids(**params: Any) -> list[str]:
        resp = await library_client.get(BASE, params=params, headers=owner.headers)
        assert resp.status == 200, await resp.text()
        return [r["id"] for r in (await resp.json())["items"]]

    newest_first = [r["id"] for r in reversed(mine)]
    assert await ids(mine="true") == newest_first
    assert await ids() == [theirs_public["id"], *newest_first]
    assert await ids(template="false") == await ids()
    paged: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = await library_client.get(BASE, params=params, headers=owner.headers)
        page = await resp.json()
        paged += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == await ids()
    for bad in [{"template": "true", "mine": "true"}, {"cursor": "garbage"}, {"mine": "maybe"}]:
        assert (await library_client.get(BASE, params=bad, headers=owner.headers)).status == 422


async def test_copy(library_client: Client) -> None:
    me = await signed_in(library_client)
    other = await signed_in(library_client, "Other")
    resp = await library_client.post(f"{BASE}/template-powerlifting-5x5/copy", headers=me.headers)
    assert resp.status == 201
    copy = await resp.json()
    assert (copy["owner_id"], copy["copied_from"], copy["visibility"]) == (
        me.user_id,
        "template-powerlifting-5x5",
        "private",
    )
    assert not copy["is_template"] and copy["name"] == "Powerlifting 5x5"
    source = await (await library_client.get(f"{BASE}/template-powerlifting-5x5", headers=me.headers)).json()
    assert copy["days"] == source["days"] and source["uses"] == 1
    # The copy is the caller's own: it can be changed, the template cannot.
    resp = await library_client.patch(f"{BASE}/{copy['id']}", json={"name": "My 5x5"}, headers=me.headers)
    assert resp.status == 200
    own_again = await library_client.post(f"{BASE}/{copy['id']}/copy", headers=me.headers)
    assert (await own_again.json())["copied_from"] == copy["id"]

    # A public routine with its owner's custom exercise cannot be copied by others.
    custom = await library_client.post(
        "/api/v1/exercises",
        json={"name": "Secret Move", "category": "strength", "primary_muscles": ["chest"]},
        headers=me.headers,
    )
    custom_id = (await custom.json())["id"]
    days = [
        {
            "name": "Day",
            "exercises": [
                {"exercise_id": BENCH, "sets": 3, "reps": 5},
                {"exercise_id": custom_id, "sets": 3, "reps": 5},
            ],
        }
    ]
    shared = await create(library_client, me, visibility="public", days=days)
    assert shared["days"][0]["exercises"][1]["exercise_name"] == "Secret Move"
    seen = await (await library_client.get(f"{BASE}/{shared['id']}", headers=other.headers)).json()
    assert seen["days"][0]["exercises"][1]["exercise_name"] == "Secret Move"
    resp = await library_client.post(f"{BASE}/{shared['id']}/copy", headers=other.headers)
    assert resp.status == 409
    assert (await resp.json())["errors"] == [
        {"field": "days.0.exercises.1.exercise_id", "message": "no exercise with this id is visible to you"}
    ]


async def test_ratings(library_client: Client, routine_events: LibraryEventRecorder) -> None:
    owner = await signed_in(library_client, "Owner")
    alice = await signed_in(library_client, "Alice")
    bob = await signed_in(library_client, "Bob")
    public = await create(library_client, owner, visibility="public")
    rid = public["id"]
    assert (await library_client.get(f"{BASE}/{rid}/rating", headers=alice.headers)).status == 404

    first = await rate(library_client, alice, rid, 4)
    assert first == {"routine_id": rid, "stars": 4, "previous_stars": None, "average": 4.0, "count": 1}
    changed = await rate(library_client, alice, rid, 2)
    assert (changed["previous_stars"], changed["average"], changed["count"]) == (4, 2.0, 1)
    assert (await rate(library_client, bob, rid, 5))["average"] == 3.5
    mine = await (await library_client.get(f"{BASE}/{rid}/rating", headers=alice.headers)).json()
    assert (mine["routine_id"], mine["stars"]) == (rid, 2)
    shown = await (await library_client.get(f"{BASE}/{rid}", headers=owner.headers)).json()
    assert shown["rating"] == {"average": 3.5, "count": 2}
    assert shown["popularity"] == popularity(7, 2, 0)

    for bad in [{"stars": 0}, {"stars": 6}, {"stars": 3.5}, {"stars": "5"}, {}]:
        resp = await library_client.put(f"{BASE}/{rid}/rating", json=bad, headers=alice.headers)
        assert resp.status == 422, bad
    resp = await library_client.put(f"{BASE}/{rid}/rating", json={"stars": 5}, headers=owner.headers)
    assert resp.status == 403 and "own" in (await resp.json())["detail"]

    event = await routine_events.wait_for("routine.rated", lambda e: e.data["previous_stars"] == 4)
    assert event.subject == rid
    assert event.data == {
        "routine_id": rid,
        "owner_id": owner.user_id,
        "user_id": alice.user_id,
        "stars": 2,
        "previous_stars": 4,
        "average": 2.0,
        "count": 1,
    }
    await routine_events.wait_for("routine.rated", lambda e: e.data["user_id"] == bob.user_id)
    assert len(routine_events.of_type("routine.rated")) == 3


async def test_concurrent_ratings_all_count(library_client: Client) -> None:
    owner = await signed_in(library_client, "Owner")
    raters = [await signed_in(library_client, f"Rater {n}") for n in range(4)]
    rid = (await create(library_client, owner, visibility="public"))["id"]
    stars = [5, 4, 2, 1]
    await asyncio.gather(*(rate(library_client, u, rid, s) for u, s in zip(raters, stars, strict=True)))
    shown = await (await library_client.get(f"{BASE}/{rid}", headers=owner.headers)).json()
    assert shown["rating"] == {"average": 3.0, "count": 4}
    assert shown["popularity"] == popularity(12, 4, 0)


async def test_store_ratings_are_race_free(open_library_db: OpenLibraryDb) -> None:
    store = RoutineStore(open_library_db())
    doc = await store.create("owner", {"name": "R", "days": [], "visibility": "public"})
    users = [f"user{n}" for n in range(30)]
    await asyncio.gather(*(store.rate(u, doc["_id"], 1 + n % 5) for n, u in enumerate(users)))
    # The same users change their minds, concurrently, while uses are recorded.
    await asyncio.gather(
        *(store.rate(u, doc["_id"], 5) for u in users[:10]),
        *(store.record_use(doc["_id"]) for _ in range(10)),
    )
    after = await store.get(doc["_id"])
    assert after is not None
    expected = sum(1 + n % 5 for n in range(10, 30)) + 5 * 10
    assert after["rating"] == {"sum": expected, "count": 30} and after["uses"] == 10
    assert after["popularity"] == popularity(expected, 30, 10)
    assert await store.ratings.count({"routine_id": doc["_id"]}) == 30


async def test_popular_ranking(library_client: Client) -> None:
    owner = await signed_in(library_client, "Owner")
    fan = await signed_in(library_client, "Fan")
    great = await create(library_client, owner, name="Great", visibility="public")
    meh = await create(library_client, owner, name="Meh", visibility="public")
    await create(library_client, owner, name="Hidden")
    await rate(library_client, fan, great["id"], 5)
    await rate(library_client, fan, meh["id"], 2)
    await library_client.post(f"{BASE}/template-upper-lower/copy", headers=fan.headers)  # one use

    resp = await library_client.get(f"{BASE}/popular", params={"limit": 100}, headers=fan.headers)
    page = await resp.json()
    ranked = [r["id"] for r in page["items"]]
    assert page["total"] == len(TEMPLATES) + 2 == len(ranked)
    unrated_templates = sorted(t.id for t in TEMPLATES if t.id != "template-upper-lower")
    assert ranked == [great["id"], "template-upper-lower", *unrated_templates, meh["id"]]
    scores = [r["popularity"] for r in page["items"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == popularity(5, 1, 0) == round((5 * 3 + 5) / 6, 6)
    assert scores[1] == round(3 + 0.5 * math.log10(2), 6)
    second = await library_client.get(
        f"{BASE}/popular", params={"limit": 2, "offset": 1}, headers=fan.headers
    )
    assert [r["id"] for r in (await second.json())["items"]] == ranked[1:3]


async def test_store_api_for_workout_logging(open_library_db: OpenLibraryDb) -> None:
    store = RoutineStore(open_library_db())
    mine = await store.create("me", {"name": "Mine", "days": routine()["days"]})
    theirs = await store.create("them", {"name": "Theirs", "days": routine()["days"]})
    view = await store.get_visible("me", mine["_id"])
    assert view is not None and view["days"][0]["exercises"][0]["exercise_id"] == BENCH
    assert await store.get_visible("me", theirs["_id"]) is None
    await store.record_use(mine["_id"])
    again = await store.get_visible("me", mine["_id"])
    assert again is not None and again["uses"] == 1 and again["popularity"] == popularity(0, 0, 1)
    await store.record_use("missing")  # no error for a routine that is gone
