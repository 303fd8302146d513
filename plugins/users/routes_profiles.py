"""``/api/v1/profiles``: the caller's profile (read, partial update) and other users' public ones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from fittracker_plugins.users.models import Profile as ProfileView
from fittracker_plugins.users.models import ProfileUpdate, PublicProfile, age_on
from fittracker_plugins.users.state import current_user, users_of
from fittracker_plugins.users.store import Document, UserStore

from fittracker import NotFound, optional_user, plugin_context, require_user
from fittracker.http import json_response, read_model

NOT_FOUND = "no public profile with this id"


async def own_profile(store: UserStore, doc: Document) -> ProfileView:
    """The full profile of ``doc``, for its owner only."""
    followers, following = await store.follow_counts(doc["_id"])
    born = date.fromisoformat(doc["birth_date"]) if doc.get("birth_date") else None
    return ProfileView(
        id=doc["_id"],
        name=doc["name"],
        height_cm=doc.get("height_cm"),
        weight_kg=doc.get("weight_kg"),
        birth_date=born,
        age=age_on(born, datetime.now(UTC).date()) if born else None,
        sex=doc.get("sex"),
        experience=doc.get("experience"),
        goals=doc.get("goals") or [],
        equipment=doc.get("equipment") or [],
        excluded_muscles=doc.get("excluded_muscles") or [],
        units=doc.get("units") or "kg",
        days_per_week=doc.get("days_per_week"),
        bio=doc.get("bio"),
        timezone=doc.get("timezone"),
        public=bool(doc.get("public", True)),
        followers_count=followers,
        following_count=following,
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


async def public_profile(store: UserStore, doc: Document, viewer_id: str | None) -> PublicProfile:
    """What others see: no email, no body data."""
    followers, following = await store.follow_counts(doc["_id"])
    following_it = viewer_id is not None and await store.is_following(viewer_id, doc["_id"])
    return PublicProfile(
        id=doc["_id"],
        name=doc["name"],
        bio=doc.get("bio"),
        experience=doc.get("experience"),
        goals=doc.get("goals") or [],
        followers_count=followers,
        following_count=following,
        is_following=following_it,
    )


async def get_me(request: web.Request) -> web.Response:
    principal = require_user(request)
    doc = await current_user(request, principal.user_id)
    return json_response(await own_profile(users_of(request).store, doc))


async def patch_me(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    principal = require_user(request)
    store = users_of(request).store
    body = await read_model(request, ProfileUpdate)
    doc = await current_user(request, principal.user_id)
    sent: dict[str, Any] = body.model_dump(mode="json", include=body.model_fields_set)
    changes = {field: value for field, value in sent.items() if doc.get(field) != value}
    if changes:
        updated = await store.update_profile(principal.user_id, changes)
        if updated is None:  # the account vanished between read and write
            await current_user(request, principal.user_id)
        else:
            doc = updated
        # The new values travel with the event so that other plug-ins can keep their own
        # read models (units, equipment, experience, time zone) without calling back.
        await ctx.publish(
            "profile.updated",
            {"user_id": principal.user_id, "changed": sorted(changes), "values": changes},
            subject=principal.user_id,
        )
    return json_response(await own_profile(store, doc))


async def get_profile(request: web.Request) -> web.Response:
    principal = optional_user(request)
    store = users_of(request).store
    user_id = request.match_info["user_id"]
    if principal is not None and principal.user_id == user_id:
        return json_response(await own_profile(store, await current_user(request, user_id)))
    doc = await store.get(user_id)
    if doc is None or not doc.get("public", True):
        raise NotFound(NOT_FOUND)
    return json_response(await public_profile(store, doc, principal.user_id if principal else None))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/profiles/me", get_me)
    app.router.add_patch("/api/v1/profiles/me", patch_me)
    app.router.add_get("/api/v1/profiles/{user_id}", get_profile)
