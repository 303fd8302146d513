"""The exercises API: search, filters, facets, and custom exercises."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.workouts.catalog import CustomCache

from tests.conftest import MakeClient
from tests.workouts.conftest import library_config, signed_in

Client = TestClient[Any, Any]
BENCH = "Barbell_Bench_Press_-_Medium_Grip"
FIELDS = {
    "id",
    "name",
    "category",
    "level",
    "force",
    "mechanic",
    "equipment",
    "primary_muscles",
    "secondary_muscles",
}
CUSTOM = {
    "name": "Qwertyx Landmine Press",
    "category": "strength",
    "level": "intermediate",
    "force": "push",
    "mechanic": "compound",
    "equipment": "barbell",
    "primary_muscles": ["shoulders"],
    "secondary_muscles": ["chest", "triceps"],
}


async def search(client: Client, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/exercises", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_search_needs_a_token(library_client: Client) -> None:
    assert (await library_client.get("/api/v1/exercises")).status == 401


async def test_word_prefix_search_is_case_insensitive(library_client: Client) -> None:
    me = await signed_in(library_client)
    found = await search(library_client, me.headers, q="bench", limit=100)
    assert BENCH in {ex["id"] for ex in found["items"]}
    assert (await search(library_client, me.headers, q="BeNcH"))["total"] == found["total"]
    assert all(set(ex) == FIELDS for ex in found["items"])  # built-ins carry no owner_id
    # "ench" is inside "Bench" but starts no word.
    assert (await search(library_client, me.headers, q="ench"))["total"] == 0


async def test_every_word_must_match(library_client: Client) -> None:
    me = await signed_in(library_client)
    both = await search(library_client, me.headers, q="bench press", limit=100)
    bench = await search(library_client, me.headers, q="bench")
    assert 0 < both["total"] < bench["total"]
    for ex in both["items"]:
        words = ex["name"].lower().replace("-", " ").split()
        assert any(w.startswith("bench") for w in words) and any(w.startswith("press") for w in words)
    assert (await search(library_client, me.headers, q="press bench"))["total"] == both["total"]
    assert (await search(library_client, me.headers, q="bench xyzzy"))["total"] == 0


async def test_filters(library_client: Client) -> None:
    me = await signed_in(library_client)
    everything = await search(library_client, me.headers)
    assert everything["total"] == 873
    cardio = await search(library_client, me.headers, category="cardio", limit=100)
    assert cardio["total"] == 14 and {ex["category"] for ex in cardio["items"]} == {"cardio"}
    expert = await search(library_client, me.headers, level="expert", limit=100)
    assert expert["total"] == 57 and {ex["level"] for ex in expert["items"]} == {"expert"}
    barbell = await search(library_client, me.headers, equipment="barbell")
    assert barbell["total"] == 170
    combined = await search(library_client, me.headers, equipment="barbell", level="expert", q="squat")
    assert all(ex["equipment"] == "barbell" and ex["level"] == "expert" for ex in combined["items"])


async def test_muscle_matches_primary_or_secondary(library_client: Client) -> None:
    me = await signed_in(library_client)
    chest = await search(library_client, me.headers, muscle="chest", limit=100, offset=0)
    everything: list[dict[str, Any]] = []
    for offset in range(0, chest["total"], 100):
        everything += (await search(library_client, me.headers, muscle="chest", limit=100, offset=offset))[
            "items"
        ]
    assert len(everything) == chest["total"]
    assert all("chest" in ex["primary_muscles"] + ex["secondary_muscles"] for ex in everything)
    assert any("chest" not in ex["primary_muscles"] for ex in everything)  # secondary only


async def test_unknown_values_match_nothing_but_malformed_ones_are_422(library_client: Client) -> None:
    me = await signed_in(library_client)
    assert (await search(library_client, me.headers, category="yoga"))["total"] == 0
    bad: list[dict[str, str | int]] = [
        {"category": "x" * 51},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"offset": -1},
        {"sort": "name"},
    ]
    for params in bad:
        resp = await library_client.get("/api/v1/exercises", params=params, headers=me.headers)
        assert resp.status == 422, params
        assert (await resp.json())["errors"][0]["field"] == next(iter(params))


async def test_pagination_keeps_the_total(library_client: Client) -> None:
    me = await signed_in(library_client)
    first = await search(library_client, me.headers, category="strength", limit=7)
    second = await search(library_client, me.headers, category="strength", limit=7, offset=7)
    assert first["total"] == second["total"] == 581
    assert (first["limit"], second["offset"]) == (7, 7)
    assert len(first["items"]) == len(second["items"]) == 7
    assert not {ex["id"] for ex in first["items"]} & {ex["id"] for ex in second["items"]}
    names = [ex["name"].lower() for ex in first["items"] + second["items"]]
    assert names == sorted(names)
    beyond = await search(library_client, me.headers, category="strength", offset=1000)
    assert beyond["items"] == [] and beyond["total"] == 581


async def test_facets_add_up(library_client: Client) -> None:
    me = await signed_in(library_client)
    resp = await library_client.get("/api/v1/exercises/facets", headers=me.headers)
    facets = await resp.json()
    assert facets["total"] == 873
    assert sum(facets["category"].values()) == sum(facets["level"].values()) == 873
    assert facets["category"]["cardio"] == 14 and facets["equipment"]["barbell"] == 170
    assert sum(facets["equipment"].values()) == 873 - 77  # 77 have no equipment
    chest = await search(library_client, me.headers, muscle="chest")
    assert facets["muscle"]["chest"] == chest["total"]
    resp = await library_client.get("/api/v1/exercises/facets", params={"q": "bench"}, headers=me.headers)
    narrowed = await resp.json()
    assert narrowed["total"] == (await search(library_client, me.headers, q="bench"))["total"]
    bad = await library_client.get("/api/v1/exercises/facets", params={"level": "x" * 60}, headers=me.headers)
    assert bad.status == 422


async def test_get_one(library_client: Client) -> None:
    me = await signed_in(library_client)
    resp = await library_client.get(f"/api/v1/exercises/{BENCH}", headers=me.headers)
    body = await resp.json()
    assert body["name"] == "Barbell Bench Press - Medium Grip" and "chest" in body["primary_muscles"]
    assert (await library_client.get("/api/v1/exercises/Nope", headers=me.headers)).status == 404


async def test_custom_exercises_are_private_to_their_owner(library_client: Client) -> None:
    owner = await signed_in(library_client, "Owner")
    other = await signed_in(library_client, "Other")
    resp = await library_client.post("/api/v1/exercises", json=CUSTOM, headers=owner.headers)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["id"].startswith("custom-") and created["owner_id"] == owner.user_id
    assert {k: created[k] for k in CUSTOM} == CUSTOM
    path = f"/api/v1/exercises/{created['id']}"

    assert (await (await library_client.get(path, headers=owner.headers)).json()) == created
    found = await search(library_client, owner.headers, q="landmine")
    assert found["items"][0]["id"] == created["id"]  # own custom exercises come first
    assert [ex["id"] for ex in (await search(library_client, owner.headers, q="qwertyx"))["items"]] == [
        created["id"]
    ]
    assert (await search(library_client, owner.headers))["total"] == 874

    assert (await library_client.get(path, headers=other.headers)).status == 404
    assert (await search(library_client, other.headers, q="qwertyx"))["total"] == 0
    facets = await (await library_client.get("/api/v1/exercises/facets", headers=other.headers)).json()
    assert facets["total"] == 873
    assert (await library_client.patch(path, json={"name": "Mine"}, headers=other.headers)).status == 404
    assert (await library_client.delete(path, headers=other.headers)).status == 404


async def test_change_and_delete_a_custom_exercise(library_client: Client) -> None:
    me = await signed_in(library_client)
    created = await (await library_client.post("/api/v1/exercises", json=CUSTOM, headers=me.headers)).json()
    path = f"/api/v1/exercises/{created['id']}"
    resp = await library_client.patch(
        path, json={"name": "Qwertyx Press (1 arm)", "force": None}, headers=me.headers
    )
    assert resp.status == 200, await resp.text()
    updated = await resp.json()
    assert updated["name"] == "Qwertyx Press (1 arm)" and updated["force"] is None
    assert updated["primary_muscles"] == ["shoulders"]
    assert (await search(library_client, me.headers, q="arm qwertyx"))["total"] == 1
    # The result is validated as a whole: a primary muscle that is already secondary is refused.
    resp = await library_client.patch(path, json={"primary_muscles": ["chest"]}, headers=me.headers)
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "secondary_muscles"
    assert (await library_client.patch(path, json={"name": None}, headers=me.headers)).status == 422
    assert (await library_client.delete(path, headers=me.headers)).status == 204
    assert (await library_client.get(path, headers=me.headers)).status == 404
    assert (await library_client.delete(path, headers=me.headers)).status == 404


async def test_built_ins_are_read_only(library_client: Client) -> None:
    me = await signed_in(library_client)
    path = f"/api/v1/exercises/{BENCH}"
    resp = await library_client.patch(path, json={"name": "Mine now"}, headers=me.headers)
    assert resp.status == 403
    assert "read-only" in (await resp.json())["detail"]
    assert (await library_client.delete(path, headers=me.headers)).status == 403
    assert (await library_client.get(path, headers=me.headers)).status == 200


async def test_custom_exercise_validation(library_client: Client) -> None:
    me = await signed_in(library_client)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**CUSTOM, "name": ""}, "name"),
        ({**CUSTOM, "name": "x" * 101}, "name"),
        ({**CUSTOM, "category": "yoga"}, "category"),
        ({**CUSTOM, "level": "pro"}, "level"),
        ({**CUSTOM, "equipment": "spoon"}, "equipment"),
        ({**CUSTOM, "primary_muscles": []}, "primary_muscles"),
        ({**CUSTOM, "primary_muscles": ["chest"] * 2}, "primary_muscles"),
        ({**CUSTOM, "primary_muscles": ["wings"]}, "primary_muscles.0"),
        ({**CUSTOM, "secondary_muscles": ["shoulders"]}, "secondary_muscles"),
        ({**CUSTOM, "instructions": "push"}, "instructions"),
        ({k: v for k, v in CUSTOM.items() if k != "category"}, "category"),
    ]
    for body, field in cases:
        resp = await library_client.post("/api/v1/exercises", json=body, headers=me.headers)
        assert resp.status == 422, body
        assert field in [e["field"] for e in (await resp.json())["errors"]], body
    assert (await search(library_client, me.headers))["total"] == 873


async def test_custom_exercise_limit(make_client: MakeClient) -> None:
    client = await make_client(plugins=["users", "workouts"], config=library_config(max_custom_exercises=2))
    me = await signed_in(client)
    for n in range(2):
        resp = await client.post(
            "/api/v1/exercises", json={**CUSTOM, "name": f"Move {n}"}, headers=me.headers
        )
        assert resp.status == 201
    resp = await client.post("/api/v1/exercises", json=CUSTOM, headers=me.headers)
    assert resp.status == 409
    assert "2 custom exercises" in (await resp.json())["detail"]


# --- search caches: what is remembered never hides a change ----------------------------------


async def test_search_shows_custom_changes_at_once(library_client: Client) -> None:
    me = await signed_in(library_client)
    assert (await search(library_client, me.headers, q="qwertyx"))["total"] == 0  # now cached
    created = await (await library_client.post("/api/v1/exercises", json=CUSTOM, headers=me.headers)).json()
    found = await search(library_client, me.headers, muscle="shoulders", limit=1)
    assert found["items"][0]["id"] == created["id"]  # the user's own come first
    path = f"/api/v1/exercises/{created['id']}"
    await library_client.patch(path, json={"name": "Zyxwv Press"}, headers=me.headers)
    assert (await search(library_client, me.headers, q="qwertyx"))["total"] == 0
    assert (await search(library_client, me.headers, q="zyxwv"))["total"] == 1
    await library_client.delete(path, headers=me.headers)
    assert (await search(library_client, me.headers, q="zyxwv"))["total"] == 0
    # Built-in results are shared between requests: paging one never changes another.
    first = await search(library_client, me.headers, muscle="chest", limit=5)
    again = await search(library_client, me.headers, muscle="chest", limit=5, offset=5)
    assert first["total"] == again["total"] and first["items"][0] != again["items"][0]
    assert first == await search(library_client, me.headers, muscle="chest", limit=5)


async def test_another_process_sees_custom_changes(make_client: MakeClient, tmp_path: Path) -> None:
    # Two apps on one data directory, as two workers of the workouts plug-in are.
    shared = tmp_path / "shared"
    one = await make_client(plugins=["users", "workouts"], config=library_config(), data_dir=shared)
    two = await make_client(plugins=["users", "workouts"], config=library_config(), data_dir=shared)
    me = await signed_in(one)
    assert (await search(two, me.headers, q="qwertyx"))["total"] == 0  # two has it cached
    assert (await one.post("/api/v1/exercises", json=CUSTOM, headers=me.headers)).status == 201
    for _ in range(100):
        if (await search(two, me.headers, q="qwertyx"))["total"] == 1:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the other process kept showing its cached search")


def test_a_read_racing_a_change_is_not_kept() -> None:
    cache = CustomCache()
    before = cache.generation
    cache.forget("u1")  # a change lands while a read (started at ``before``) is in flight
    cache.put("u1", before, [{"id": "custom-old"}])
    assert cache.get("u1") is None
    cache.put("u1", cache.generation, [{"id": "custom-new"}])
    assert cache.get("u1") == [{"id": "custom-new"}]
    cache.forget()
    assert cache.get("u1") is None


def test_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("fittracker_plugins.workouts.catalog.time.monotonic", lambda: now[0])
    cache = CustomCache(ttl_s=60.0)
    cache.put("u1", cache.generation, [])
    assert cache.get("u1") == []
    now[0] += 61
    assert cache.get("u1") is None
