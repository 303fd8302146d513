"""Own profile (read, partial update, validation) and other users' public profiles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import auth, register
from tests.users.conftest import EventRecorder

Client = TestClient[Any, Any]
ME = "/api/v1/profiles/me"


def years_ago(years: int, days: int = 0) -> str:
    today = datetime.now(UTC).date()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return (born + timedelta(days=days)).isoformat()


async def patch(client: Client, token: str, body: Any) -> Any:
    return await client.patch(ME, json=body, headers=auth(token))


async def test_new_profile_has_defaults(users_client: Client) -> None:
    reg = await register(users_client, name="Pat Doe")
    resp = await users_client.get(ME, headers=auth(reg["access_token"]))
    assert resp.status == 200
    profile = await resp.json()
    assert profile["id"] == reg["user"]["id"]
    assert profile["name"] == "Pat Doe"
    assert profile["units"] == "kg"
    assert profile["public"] is True
    assert profile["goals"] == [] and profile["equipment"] == [] and profile["excluded_muscles"] == []
    assert profile["height_cm"] is None and profile["birth_date"] is None and profile["age"] is None
    assert profile["followers_count"] == 0 and profile["following_count"] == 0


async def test_profile_needs_a_token(users_client: Client) -> None:
    assert (await users_client.get(ME)).status == 401
    assert (await users_client.patch(ME, json={"bio": "x"})).status == 401


async def test_partial_update(users_client: Client, recorder: EventRecorder) -> None:
    reg = await register(users_client)
    token = reg["access_token"]
    full = {
        "name": "New Name",
        "height_cm": 180.5,
        "weight_kg": 82,
        "birth_date": years_ago(30),
        "sex": "female",
        "experience": "intermediate",
        "goals": ["strength", "mobility", "strength"],
        "equipment": ["barbell", " dumbbells "],
        "excluded_muscles": ["lower back", "neck", "lower back"],
        "units": "lb",
        "days_per_week": 4,
        "bio": "Lifting since 2010.",
        "timezone": "Europe/Paris",
        "public": True,
    }
    resp = await patch(users_client, token, full)
    assert resp.status == 200, await resp.text()
    profile = await resp.json()
    assert profile["name"] == "New Name"
    assert profile["height_cm"] == 180.5 and profile["weight_kg"] == 82
    assert profile["age"] == 30
    assert profile["goals"] == ["strength", "mobility"]
    assert profile["equipment"] == ["barbell", "dumbbells"]
    assert profile["excluded_muscles"] == ["lower back", "neck"]
    assert profile["units"] == "lb" and profile["timezone"] == "Europe/Paris"

    event = await recorder.wait_for("profile.updated")
    assert event.data["user_id"] == reg["user"]["id"]
    assert set(event.data["changed"]) == set(full) - {"public"}  # public was already true
    assert event.data["values"]["units"] == "lb" and event.data["values"]["weight_kg"] == 82

    # only what is sent changes; null clears optional data
    resp = await patch(users_client, token, {"bio": None, "days_per_week": 5})
    profile = await resp.json()
    assert profile["bio"] is None and profile["days_per_week"] == 5
    assert profile["height_cm"] == 180.5 and profile["name"] == "New Name"
    assert (await (await users_client.get(ME, headers=auth(token))).json()) == profile

    # the new name is what the account shows and what search finds
    me = await (await users_client.get("/api/v1/auth/me", headers=auth(token))).json()
    assert me["name"] == "New Name"


async def test_unchanged_fields_publish_nothing(users_client: Client, recorder: EventRecorder) -> None:
    reg = await register(users_client, name="Same")
    token = reg["access_token"]
    assert (await patch(users_client, token, {"name": "Same", "units": "kg"})).status == 200
    assert (await patch(users_client, token, {"bio": "hello"})).status == 200
    await recorder.wait_for("profile.updated", lambda e: e.data["changed"] == ["bio"])
    assert len(recorder.of_type("profile.updated")) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", None),
        ("name", "x" * 101),
        ("height_cm", 49),
        ("height_cm", 261),
        ("height_cm", "tall"),
        ("weight_kg", 19.9),
        ("weight_kg", 400.1),
        ("birth_date", "not-a-date"),
        ("birth_date", (datetime.now(UTC).date() + timedelta(days=1)).isoformat()),
        ("birth_date", years_ago(13, days=1)),
        ("birth_date", years_ago(121)),
        ("sex", "robot"),
        ("experience", "expert"),
        ("goals", ["strength", "flying"]),
        ("goals", "strength"),
        ("goals", None),
        ("equipment", ["x" * 41]),
        ("equipment", [""]),
        ("equipment", [f"item{i}" for i in range(31)]),
        ("excluded_muscles", ["knees"]),
        ("excluded_muscles", None),
        ("units", "stone"),
        ("days_per_week", 0),
        ("days_per_week", 8),
        ("days_per_week", "3"),
        ("bio", "b" * 501),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../../etc/passwd"),
        ("public", "yes"),
        ("public", None),
        ("email", "new@example.com"),
        ("role", "admin"),
    ],
)
async def test_profile_validation(users_client: Client, field: str, value: Any) -> None:
    reg = await register(users_client)
    resp = await patch(users_client, reg["access_token"], {field: value})
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    fields = {e["field"].split(".")[0] for e in body["errors"]}
    assert fields == {field}
    # nothing was half-applied
    profile = await (await users_client.get(ME, headers=auth(reg["access_token"]))).json()
    assert profile["name"] == "Test User" and profile["height_cm"] is None


async def test_edge_values_are_accepted(users_client: Client) -> None:
    reg = await register(users_client)
    body = {
        "height_cm": 50,
        "weight_kg": 400,
        "birth_date": years_ago(13),
        "days_per_week": 7,
        "goals": ["strength", "hypertrophy", "endurance", "fat_loss", "general", "mobility"],
        "equipment": [],
        "bio": "",
        "timezone": "UTC",
    }
    resp = await patch(users_client, reg["access_token"], body)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["age"] == 13


async def test_patch_body_must_be_an_object(users_client: Client) -> None:
    reg = await register(users_client)
    assert (await patch(users_client, reg["access_token"], ["bio"])).status == 422


async def test_public_profile_hides_private_fields(users_client: Client) -> None:
    owner = await register(users_client, email="owner@example.com", name="Owner")
    viewer = await register(users_client, name="Viewer")
    await patch(
        users_client,
        owner["access_token"],
        {"height_cm": 175, "weight_kg": 70, "bio": "hi", "experience": "advanced", "goals": ["general"]},
    )
    url = f"/api/v1/profiles/{owner['user']['id']}"
    resp = await users_client.get(url, headers=auth(viewer["access_token"]))
    assert resp.status == 200
    public = await resp.json()
    assert public == {
        "id": owner["user"]["id"],
        "name": "Owner",
        "bio": "hi",
        "experience": "advanced",
        "goals": ["general"],
        "followers_count": 0,
        "following_count": 0,
        "is_following": False,
    }
    assert "owner@example.com" not in await resp.text()

    # anonymous callers see the same public view
    anon = await (await users_client.get(url)).json()
    assert anon == public

    # the owner sees everything
    own = await (await users_client.get(url, headers=auth(owner["access_token"]))).json()
    assert own["height_cm"] == 175 and own["weight_kg"] == 70


async def test_private_profile_is_404_for_others(users_client: Client) -> None:
    owner = await register(users_client)
    viewer = await register(users_client)
    await patch(users_client, owner["access_token"], {"public": False})
    url = f"/api/v1/profiles/{owner['user']['id']}"
    assert (await users_client.get(url, headers=auth(viewer["access_token"]))).status == 404
    assert (await users_client.get(url)).status == 404
    assert (await users_client.get(url, headers=auth(owner["access_token"]))).status == 200


@pytest.mark.parametrize(
    "user_id", ["0" * 32, "nope", "..%2F..%2Fetc%2Fpasswd", "%C3%BC%C3%B1%C3%AF", "A" * 32, "me%00"]
)
async def test_unknown_or_malformed_profile_id_is_404(users_client: Client, user_id: str) -> None:
    reg = await register(users_client)
    resp = await users_client.get(f"/api/v1/profiles/{user_id}", headers=auth(reg["access_token"]))
    assert resp.status == 404


async def test_birth_date_is_a_date(users_client: Client) -> None:
    reg = await register(users_client)
    born = date(1990, 5, 17).isoformat()
    profile = await (await patch(users_client, reg["access_token"], {"birth_date": born})).json()
    assert profile["birth_date"] == born
    assert profile["age"] >= 30
