"""Search by name, follow/unfollow, followers and following with cursor pagination."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import auth, register
from tests.users.conftest import EventRecorder

Client = TestClient[Any, Any]


async def search(client: Client, token: str, **params: Any) -> Any:
    return await client.get("/api/v1/users", params=params, headers=auth(token))


async def names(client: Client, token: str, q: str) -> set[str]:
    resp = await search(client, token, q=q)
    assert resp.status == 200, await resp.text()
    return {item["name"] for item in (await resp.json())["items"]}


async def follow(client: Client, token: str, user_id: str) -> int:
    return int((await client.post(f"/api/v1/users/{user_id}/follow", headers=auth(token))).status)


async def unfollow(client: Client, token: str, user_id: str) -> int:
    return int((await client.delete(f"/api/v1/users/{user_id}/follow", headers=auth(token))).status)


# --- search -----------------------------------------------------------------------------------


async def test_search_by_word_prefix(users_client: Client) -> None:
    me = await register(users_client, name="Searcher")
    for name in ("Alice Smith", "Bob Alison", "Carol Jones", "alistair o'neil"):
        await register(users_client, name=name)
    token = me["access_token"]
    assert await names(users_client, token, "ali") == {"Alice Smith", "Bob Alison", "alistair o'neil"}
    assert await names(users_client, token, "ALI") == {"Alice Smith", "Bob Alison", "alistair o'neil"}
    assert await names(users_client, token, "ali smi") == {"Alice Smith"}
    assert await names(users_client, token, "jon") == {"Carol Jones"}
    assert await names(users_client, token, "o'n") == {"alistair o'neil"}
    assert await names(users_client, token, "neil") == {"alistair o'neil"}
    assert await names(users_client, token, "lice") == set()  # prefixes only


@pytest.mark.parametrize("q", [".*", "(", "a+", "[", "\\", "$", "^"])
async def test_search_escapes_regex(users_client: Client, q: str) -> None:
    me = await register(users_client, name="Regex Fan")
    assert await names(users_client, me["access_token"], q) == set()


async def test_search_excludes_private_profiles(users_client: Client) -> None:
    me = await register(users_client, name="Seeker")
    hidden = await register(users_client, name="Hidden Hal")
    await users_client.patch(
        "/api/v1/profiles/me", json={"public": False}, headers=auth(hidden["access_token"])
    )
    assert await names(users_client, me["access_token"], "hal") == set()


async def test_search_pagination(users_client: Client) -> None:
    me = await register(users_client, name="Zed")
    for i in range(5):
        await register(users_client, name=f"Member {i}")
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"q": "member", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await (await search(users_client, me["access_token"], **params)).json()
        seen.extend(item["name"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Member {i}" for i in range(5)]


async def test_search_without_q_lists_everyone(users_client: Client) -> None:
    me = await register(users_client, name="Only One")
    page = await (await search(users_client, me["access_token"])).json()
    assert page == {"items": [{"id": me["user"]["id"], "name": "Only One"}], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"sort": "name"}, "sort"),
        ({"q": "x" * 101}, "q"),
    ],
)
async def test_search_query_validation(users_client: Client, params: dict[str, Any], field: str) -> None:
    me = await register(users_client)
    resp = await search(users_client, me["access_token"], **params)
    assert resp.status == 422
    assert {e["field"] for e in (await resp.json())["errors"]} == {field}


async def test_search_needs_a_token(users_client: Client) -> None:
    assert (await users_client.get("/api/v1/users", params={"q": "a"})).status == 401


# --- follow -----------------------------------------------------------------------------------


async def test_follow_is_idempotent(users_client: Client, recorder: EventRecorder) -> None:
    fan = await register(users_client, name="Fan")
    star = await register(users_client, name="Star")
    star_id, fan_id = star["user"]["id"], fan["user"]["id"]
    assert await follow(users_client, fan["access_token"], star_id) == 204
    assert await follow(users_client, fan["access_token"], star_id) == 204

    event = await recorder.wait_for("user.followed")
    assert event.data == {"follower_id": fan_id, "followee_id": star_id}

    profile = await (
        await users_client.get(f"/api/v1/profiles/{star_id}", headers=auth(fan["access_token"]))
    ).json()
    assert profile["followers_count"] == 1
    assert profile["is_following"] is True
    own = await (await users_client.get("/api/v1/profiles/me", headers=auth(fan["access_token"]))).json()
    assert own["following_count"] == 1

    assert await unfollow(users_client, fan["access_token"], star_id) == 204
    assert await unfollow(users_client, fan["access_token"], star_id) == 204
    await recorder.wait_for("user.unfollowed")
    assert len(recorder.of_type("user.followed")) == 1
    profile = await (await users_client.get(f"/api/v1/profiles/{star_id}")).json()
    assert profile["followers_count"] == 0


async def test_concurrent_follows_create_one(users_client: Client, recorder: EventRecorder) -> None:
    fan = await register(users_client)
    star = await register(users_client)
    statuses = await asyncio.gather(
        *(follow(users_client, fan["access_token"], star["user"]["id"]) for _ in range(5))
    )
    assert statuses == [204] * 5
    followers = await (
        await users_client.get(
            f"/api/v1/users/{star['user']['id']}/followers", headers=auth(fan["access_token"])
        )
    ).json()
    assert len(followers["items"]) == 1
    await recorder.wait_for("user.followed")
    await asyncio.sleep(0.2)
    assert len(recorder.of_type("user.followed")) == 1


async def test_cannot_follow_yourself(users_client: Client) -> None:
    me = await register(users_client)
    resp = await users_client.post(
        f"/api/v1/users/{me['user']['id']}/follow", headers=auth(me["access_token"])
    )
    assert resp.status == 422
    body = await resp.json()
    assert "yourself" in body["detail"]
    assert body["errors"][0]["field"] == "user_id"


@pytest.mark.parametrize(
    "user_id", ["0" * 32, "nope", "..%2F..%2Fetc%2Fpasswd", "%E2%80%AE%F0%9F%98%80", "A" * 32, "a" * 33]
)
async def test_follow_unknown_or_malformed_user_is_404(users_client: Client, user_id: str) -> None:
    me = await register(users_client)
    assert await follow(users_client, me["access_token"], user_id) == 404
    assert await unfollow(users_client, me["access_token"], user_id) == 404
    resp = await users_client.get(f"/api/v1/users/{user_id}/followers", headers=auth(me["access_token"]))
    assert resp.status == 404


async def test_private_users_cannot_be_followed(users_client: Client) -> None:
    me = await register(users_client)
    hidden = await register(users_client)
    await users_client.patch(
        "/api/v1/profiles/me", json={"public": False}, headers=auth(hidden["access_token"])
    )
    assert await follow(users_client, me["access_token"], hidden["user"]["id"]) == 404


async def test_follow_needs_a_token(users_client: Client) -> None:
    star = await register(users_client)
    assert (await users_client.post(f"/api/v1/users/{star['user']['id']}/follow")).status == 401


# --- followers / following ------------------------------------------------------------------


async def test_followers_pagination(users_client: Client) -> None:
    star = await register(users_client, name="Star")
    star_id = star["user"]["id"]
    fans = []
    for i in range(7):
        fan = await register(users_client, name=f"Fan {i}")
        assert await follow(users_client, fan["access_token"], star_id) == 204
        fans.append(fan["user"]["id"])

    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        resp = await users_client.get(
            f"/api/v1/users/{star_id}/followers", params=params, headers=auth(star["access_token"])
        )
        assert resp.status == 200
        page = await resp.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    items = [item for page in pages for item in page]
    assert [item["id"] for item in items] == list(reversed(fans))  # newest first, no repeats
    assert items[0]["name"] == "Fan 6"
    times = [item["followed_at"] for item in items]
    assert times == sorted(times, reverse=True)

    # following, from a fan's side
    resp = await users_client.get(f"/api/v1/users/{fans[0]}/following", headers=auth(star["access_token"]))
    following = await resp.json()
    assert [(i["id"], i["name"]) for i in following["items"]] == [(star_id, "Star")]
    assert following["next_cursor"] is None


async def test_follow_lists_default_limit_and_bounds(users_client: Client) -> None:
    me = await register(users_client)
    url = f"/api/v1/users/{me['user']['id']}/followers"
    resp = await users_client.get(url, headers=auth(me["access_token"]))
    assert await resp.json() == {"items": [], "next_cursor": None}
    for bad in ("0", "101", "x"):
        resp = await users_client.get(url, params={"limit": bad}, headers=auth(me["access_token"]))
        assert resp.status == 422
    resp = await users_client.get(url, params={"cursor": "bm9wZQ"}, headers=auth(me["access_token"]))
    assert resp.status == 422
