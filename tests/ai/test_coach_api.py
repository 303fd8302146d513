"""Recommendations and alternatives end to end, and the recommender extension point."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fittracker_plugins.ai.catalog import normalize_equipment

from fittracker import PluginContext, PluginInfo, hookimpl
from fittracker.coaching import Candidate, RecommendationContext
from fittracker.runtime import RUNTIME
from tests.ai.test_api import AI, CONFIG, PLUGINS, wait_for_muscle
from tests.conftest import MakeClient
from tests.workouts.conftest import SignedIn, signed_in
from tests.workouts.test_exercises import CUSTOM
from tests.workouts.workout_helpers import BENCH, Client, log, start

DUMBBELL_WORK = {"dumbbell", "body only", None}


async def profile(client: Client, who: SignedIn, **fields: Any) -> None:
    resp = await client.patch("/api/v1/profiles/me", json=fields, headers=who.headers)
    assert resp.status == 200, await resp.text()


async def recommendations(client: Client, who: SignedIn, **params: Any) -> dict[str, Any]:
    resp = await client.get(AI + "/recommendations", headers=who.headers, params=params)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def until_profile_seen(client: Client, who: SignedIn, words: str) -> dict[str, Any]:
    """The profile reaches the AI through an event: poll until the summary mentions ``words``."""
    for _ in range(200):
        body = await recommendations(client, who)
        if words in body["reason"]:
            return body
        await asyncio.sleep(0.025)
    raise AssertionError(f"the AI never saw the profile ({words!r})")


async def test_a_beginner_with_dumbbells_and_a_sore_back(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    await profile(
        client,
        who,
        experience="beginner",
        goals=["hypertrophy"],
        equipment=["Dumbbells"],
        excluded_muscles=["lower back"],
        units="lb",
    )
    body = await until_profile_seen(client, who, "leaving out lower back")
    assert not body["rest_day"] and body["goal"] == "hypertrophy" and body["ranked_by"] == ["builtin"]
    assert len(body["exercises"]) == 5 and body["focus"] == "full body"
    for item in body["exercises"]:
        assert item["equipment"] in DUMBBELL_WORK, item
        assert "lower back" not in item["primary_muscles"]
        assert item["reason"] and item["units"] == "lb" and item["weight_kg"] is None
        assert (item["reps_min"], item["reps_max"]) in ((6, 10), (10, 15))  # hypertrophy
        assert "No history yet" in item["reason"]


async def test_todays_work_and_tired_muscles_are_left_out(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    workout = await start(client, who)
    for _ in range(8):
        await log(client, who, workout["id"], BENCH, reps=8, weight_kg=80, rpe=9)
    await wait_for_muscle(client, who, "chest", sets=8)
    body = await recommendations(client, who, count=6)
    chosen = {item["exercise_id"] for item in body["exercises"]}
    assert BENCH not in chosen
    # 8 sets at RPE 9: chest 7.2 units (28 % recovered), shoulders and triceps half (64 %).
    tired = [(m["muscle"], m["recovery_pct"]) for m in body["recovering"]]
    assert tired == [("chest", 28.0), ("shoulders", 64.0), ("triceps", 64.0)]
    assert all(
        not {"chest", "shoulders", "triceps"} & set(item["primary_muscles"]) for item in body["exercises"]
    )
    assert body["week"]["push_sets"] == 8 and body["week"]["muscles"]["chest"] == 8
    assert "resting chest" in body["reason"]


async def test_a_known_lift_gets_a_target_weight(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    await profile(client, who, goals=["hypertrophy"])
    await until_profile_seen(client, who, "for a hypertrophy goal")
    # Eight days ago (the API only logs "now", so the workouts plug-in's event is published
    # as it would have been then): 3 x 10 at 30 kg, RPE 8. Out of this week's coverage, but
    # a familiar lift.
    bus = client.app[RUNTIME].bus
    when = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    press: dict[str, Any] = {"id": "Dumbbell_Bench_Press", "name": "Dumbbell Bench Press"}
    press["category"] = "strength"
    press |= {"force": "push", "mechanic": "compound", "equipment": "dumbbell"}
    press |= {"primary_muscles": ["chest"], "secondary_muscles": ["shoulders", "triceps"]}
    for n in range(3):
        item: dict[str, Any] = {
            "id": f"s{n}",
            "exercise_id": press["id"],
            "reps": 10,
            "weight_kg": 30.0,
            "rpe": 8.0,
        }
        item |= {"set_type": "normal", "logged_at": when}
        data = {"user_id": who.user_id, "workout_id": "w-old", "set": item, "exercise": press}
        await bus.publish("workout.set_logged", data, source="fittracker/workouts")
    for _ in range(200):
        resp = await client.get(f"{AI}/progression/{press['id']}", headers=who.headers)
        if resp.status == 200:
            break
        await asyncio.sleep(0.025)
    body = await recommendations(client, who)
    item = next(i for i in body["exercises"] if i["exercise_id"] == press["id"])
    # Hypertrophy, compound: 6-10 reps at RPE 8; every set reached 10 at RPE 8 -> double
    # progression: +1.25 kg (upper body), back to 6 reps.
    assert (item["weight_kg"], item["reps"], item["reps_min"], item["reps_max"]) == (31.25, 6, 6, 10)
    assert item["target_rpe"] == 8.0 and item["rest_s"] == 90
    assert "you have logged it in 1 session" in item["reason"]
    assert "add 1.25 kg and restart at 6 reps" in item["reason"]

    resp = await client.get(f"{AI}/progression/{press['id']}", headers=who.headers)
    body = await resp.json()  # the progression endpoint agrees: the same goal, the same target
    assert body["target"]["weight_kg"] == 31.25 and body["model"]["rep_max"] == 10


async def test_bad_queries(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    for params in ({"count": "2"}, {"count": "11"}, {"units": "stone"}, {"nope": "1"}):
        resp = await client.get(AI + "/recommendations", headers=who.headers, params=params)
        assert resp.status == 422, params
        assert resp.content_type == "application/problem+json"
    assert (await client.get(AI + "/recommendations")).status == 401
    assert (await client.get(AI + "/exercises/Pullups/alternatives")).status == 401


async def test_alternatives_use_the_users_equipment(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    await profile(client, who, equipment=["dumbbells"])
    await until_profile_seen(client, who, "with dumbbell")
    resp = await client.get(f"{AI}/exercises/{BENCH}/alternatives", headers=who.headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["pattern"] == "horizontal_push" and body["primary_muscles"] == ["chest"]
    items = body["items"]
    assert len(items) == 5 and items[0]["exercise_id"] == "Dumbbell_Bench_Press"
    assert all(item["equipment"] in DUMBBELL_WORK for item in items)
    assert all(item["exercise_id"] != BENCH for item in items)
    assert items[0]["same_pattern"] and "same movement (horizontal push)" in items[0]["reason"]

    resp = await client.get(f"{AI}/exercises/No_Such_Lift/alternatives", headers=who.headers)
    assert resp.status == 404
    resp = await client.get(f"{AI}/exercises/{BENCH}/alternatives?limit=0", headers=who.headers)
    assert resp.status == 422


async def test_alternatives_of_another_users_custom_exercise_are_not_found(make_client: MakeClient) -> None:
    """A custom exercise exists only for its owner: the AI learns it from the owner's sets, and
    must not describe it (name, muscles) to anyone else."""
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    owner, other = await signed_in(client), await signed_in(client)
    resp = await client.post("/api/v1/exercises", json=CUSTOM, headers=owner.headers)
    assert resp.status == 201, await resp.text()
    custom = (await resp.json())["id"]
    await log(client, owner, (await start(client, owner))["id"], custom, reps=5, weight_kg=40)
    path, name = f"{AI}/exercises/{custom}/alternatives", str(CUSTOM["name"])
    for _ in range(200):  # the set reaches the AI's read model through an event
        resp = await client.get(path, headers=owner.headers)
        if resp.status == 200:
            break
        await asyncio.sleep(0.025)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["exercise_name"] == name
    resp = await client.get(path, headers=other.headers)
    assert resp.status == 404, await resp.text()
    assert name not in await resp.text()


# --- the extension point ------------------------------------------------------------------------


class Favourites:
    """A recommender that puts its own picks first, one of them unsafe for the user."""

    name = "favourites"

    def __init__(self) -> None:
        self.seen: list[RecommendationContext] = []

    async def rerank(
        self, context: RecommendationContext, candidates: Sequence[Candidate]
    ) -> Sequence[Candidate] | None:
        self.seen.append(context)
        mine = [
            Candidate("Barbell_Squat", 99.0, "the model's top pick"),  # needs a barbell
            Candidate("Hammer_Curls", 98.0, "the model likes curls"),
        ]
        return [*mine, *candidates]


class Broken:
    name = "broken"

    async def rerank(
        self, context: RecommendationContext, candidates: Sequence[Candidate]
    ) -> Sequence[Candidate] | None:
        raise RuntimeError("model file missing")


class RankerPlugin:
    """A third-party plug-in adding recommenders through ``fittracker_recommenders``."""

    def __init__(self) -> None:
        self.favourites = Favourites()

    @hookimpl
    def fittracker_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="ranker", version="1.0")

    @hookimpl
    def fittracker_recommenders(self, ctx: PluginContext) -> list[Any]:
        assert ctx.info.name == "ai"
        return [Broken(), self.favourites]


async def test_a_plugin_reranks_and_the_hard_rules_still_hold(make_client: MakeClient) -> None:
    ranker = RankerPlugin()
    client = await make_client(plugins=[*PLUGINS, "ranker"], config=CONFIG, extra=[ranker])
    who = await signed_in(client)
    await profile(client, who, equipment=["dumbbells"])
    body = await until_profile_seen(client, who, "with dumbbell")
    assert body["ranked_by"] == ["builtin", "favourites"]
    first = body["exercises"][0]
    ids = [item["exercise_id"] for item in body["exercises"]]
    assert "Hammer_Curls" in ids and "Barbell_Squat" not in ids
    overridden = {
        item.get("exercise_id") or item.get("recommender"): item["reason"] for item in body["overridden"]
    }
    assert "needs barbell" in overridden["Barbell_Squat"]
    assert overridden["broken"] == "failed: RuntimeError"
    assert first["reason"]
    context = ranker.favourites.seen[-1]
    assert context.user_id == who.user_id and normalize_equipment(context.equipment) == {"dumbbell"}
