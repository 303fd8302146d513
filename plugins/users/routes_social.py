"""``/api/v1/users``: search by name, follow/unfollow, followers and following lists.

A user whose profile is not public is invisible to others: absent from search, and 404 for
follow and for the lists (except to themselves). Unfollowing always works.
"""

from __future__ import annotations

from aiohttp import web
from fittracker_plugins.users.models import (
    FollowEntry,
    FollowPage,
    PageQuery,
    SearchQuery,
    UserSummary,
    UserSummaryPage,
)
from fittracker_plugins.users.state import users_of
from fittracker_plugins.users.store import Document, UserStore

from fittracker import NotFound, Principal, ValidationFailed, plugin_context, require_user
from fittracker.http import json_response, no_content, read_query

NO_USER = "no user with this id"


async def visible_user(store: UserStore, user_id: str, viewer: Principal) -> Document:
    """The user ``user_id`` if ``viewer`` may see them; 404 otherwise (malformed ids included)."""
    doc = await store.get(user_id)
    if doc is None or (not doc.get("public", True) and doc["_id"] != viewer.user_id):
        raise NotFound(NO_USER)
    return doc


async def search(request: web.Request) -> web.Response:
    require_user(request)
    query = read_query(request, SearchQuery)
    docs, next_cursor = await users_of(request).store.search(query.q, query.limit, query.cursor)
    page = UserSummaryPage(
        items=[UserSummary(id=d["_id"], name=d["name"]) for d in docs], next_cursor=next_cursor
    )
    return json_response(page)


async def follow(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    principal = require_user(request)
    store = users_of(request).store
    target = await visible_user(store, request.match_info["user_id"], principal)
    if target["_id"] == principal.user_id:
        raise ValidationFailed(
            "you cannot follow yourself",
            errors=[{"field": "user_id", "message": "you cannot follow yourself"}],
        )
    if await store.follow(principal.user_id, target["_id"]):
        await ctx.publish(
            "user.followed",
            {"follower_id": principal.user_id, "followee_id": target["_id"]},
            subject=target["_id"],
        )
    return no_content()


async def unfollow(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    principal = require_user(request)
    store = users_of(request).store
    user_id = request.match_info["user_id"]
    if await store.unfollow(principal.user_id, user_id):
        await ctx.publish(
            "user.unfollowed", {"follower_id": principal.user_id, "followee_id": user_id}, subject=user_id
        )
    elif await store.get(user_id) is None:
        raise NotFound(NO_USER)
    return no_content()


async def _follow_list(request: web.Request, *, followers: bool) -> web.Response:
    principal = require_user(request)
    store = users_of(request).store
    query = read_query(request, PageQuery)
    target = await visible_user(store, request.match_info["user_id"], principal)
    fetch = store.followers if followers else store.following
    rows, next_cursor = await fetch(target["_id"], query.limit, query.cursor)
    page = FollowPage(items=[FollowEntry.model_validate(row) for row in rows], next_cursor=next_cursor)
    return json_response(page)


async def list_followers(request: web.Request) -> web.Response:
    return await _follow_list(request, followers=True)


async def list_following(request: web.Request) -> web.Response:
    return await _follow_list(request, followers=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/users", search)
    app.router.add_post("/api/v1/users/{user_id}/follow", follow)
    app.router.add_delete("/api/v1/users/{user_id}/follow", unfollow)
    app.router.add_get("/api/v1/users/{user_id}/followers", list_followers)
    app.router.add_get("/api/v1/users/{user_id}/following", list_following)
