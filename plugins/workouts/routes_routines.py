"""``/api/v1/routines``: templates, users' routines, copies, ratings and the popular list.

Who may do what: anyone signed in reads templates and public routines; a private routine
exists only for its owner (404 to others). Only the owner changes or deletes a routine (403
for another user's public one); templates are read-only (403). Rating your own routine is
refused (403) so owners cannot push their routines up the popular list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aiohttp import web
from fittracker_plugins.workouts import openapi_routines
from fittracker_plugins.workouts.models_routines import (
    PopularQuery,
    RatingRequest,
    RoutineCreate,
    RoutineDay,
    RoutineListQuery,
    RoutineUpdate,
    superset_errors,
)
from fittracker_plugins.workouts.routines import Document, RoutineStore, Scope
from fittracker_plugins.workouts.state import WORKOUTS, workouts_of
from fittracker_plugins.workouts.templates import seed_templates

from fittracker import (
    Conflict,
    Forbidden,
    NotFound,
    PluginContext,
    Principal,
    ValidationFailed,
    plugin_context,
    require_user,
)
from fittracker.http import json_response, no_content, read_model, read_query

ROUTINES = web.AppKey("fittracker_plugins.workouts.routines", RoutineStore)
NO_ROUTINE = "no routine with this id"
NOT_VISIBLE = "no exercise with this id is visible to you"


def routines_of(request: web.Request) -> RoutineStore:
    return request.app[ROUTINES]


async def visible(request: web.Request, principal: Principal) -> Document:
    """The routine of the path if the caller may see it; 404 otherwise."""
    doc = await routines_of(request).visible_doc(principal.user_id, request.match_info["routine_id"])
    if doc is None:
        raise NotFound(NO_ROUTINE)
    return doc


async def owned(request: web.Request, principal: Principal) -> Document:
    """The routine of the path if the caller owns it: 404 if unseen, 403 if someone else's."""
    doc = await visible(request, principal)
    if doc.get("is_template"):
        raise Forbidden("templates are read-only; copy one (POST /api/v1/routines/{id}/copy) to change it")
    if doc.get("owner_id") != principal.user_id:
        raise Forbidden("only the owner may change or delete this routine")
    return doc


async def checked_days(
    request: web.Request, user_id: str, days: Sequence[RoutineDay]
) -> list[dict[str, Any]]:
    """Days ready to store (with exercise names); 422 naming each bad field."""
    ids = [planned.exercise_id for d in days for planned in d.exercises]
    found = await workouts_of(request).catalog.get_many(user_id, ids)
    errors = superset_errors(days)
    for d, day in enumerate(days):
        for e, planned in enumerate(day.exercises):
            if planned.exercise_id not in found:
                errors.append({"field": f"days.{d}.exercises.{e}.exercise_id", "message": NOT_VISIBLE})
    if errors:
        raise ValidationFailed("the routine is not valid", errors=errors)
    stored = [day.model_dump() for day in days]
    for planned in (e for d in stored for e in d["exercises"]):
        planned["exercise_name"] = found[planned["exercise_id"]]["name"]
    return stored


# --- handlers ----------------------------------------------------------------------------------


async def list_routines(request: web.Request) -> web.Response:
    principal = require_user(request)
    query = read_query(request, RoutineListQuery)
    scope: Scope = "templates" if query.template else "mine" if query.mine else "visible"
    store = routines_of(request)
    docs, next_cursor = await store.page(principal.user_id, scope, query.limit, query.cursor)
    return json_response({"items": await store.present_many(docs), "next_cursor": next_cursor})


async def popular(request: web.Request) -> web.Response:
    require_user(request)
    query = read_query(request, PopularQuery)
    store = routines_of(request)
    docs, total = await store.popular(query.limit, query.offset)
    items = await store.present_many(docs)
    return json_response({"items": items, "total": total, "limit": query.limit, "offset": query.offset})


async def create_routine(request: web.Request) -> web.Response:
    principal = require_user(request)
    body = await read_model(request, RoutineCreate)
    fields = body.model_dump()
    fields["days"] = await checked_days(request, principal.user_id, body.days)
    store = routines_of(request)
    doc = await store.create(principal.user_id, fields)
    return json_response(await store.present(doc), status=201)


async def get_routine(request: web.Request) -> web.Response:
    principal = require_user(request)
    return json_response(await routines_of(request).present(await visible(request, principal)))


async def update_routine(request: web.Request) -> web.Response:
    principal = require_user(request)
    doc = await owned(request, principal)
    body = await read_model(request, RoutineUpdate)
    changes = body.model_dump(exclude_unset=True)
    if body.days is not None:
        changes["days"] = await checked_days(request, principal.user_id, body.days)
    store = routines_of(request)
    updated = await store.update(principal.user_id, doc["_id"], changes)
    if updated is None:  # deleted meanwhile
        raise NotFound(NO_ROUTINE)
    return json_response(await store.present(updated))


async def delete_routine(request: web.Request) -> web.Response:
    principal = require_user(request)
    doc = await owned(request, principal)
    if not await routines_of(request).delete(principal.user_id, doc["_id"]):
        raise NotFound(NO_ROUTINE)
    return no_content()


async def copy_routine(request: web.Request) -> web.Response:
    principal = require_user(request)
    source = await visible(request, principal)
    ids = [e["exercise_id"] for d in source["days"] for e in d["exercises"]]
    found = await workouts_of(request).catalog.get_many(principal.user_id, ids)
    # A public routine may use its owner's custom exercises, which the copier cannot use.
    errors = [
        {"field": f"days.{d}.exercises.{e}.exercise_id", "message": NOT_VISIBLE}
        for d, day in enumerate(source["days"])
        for e, planned in enumerate(day["exercises"])
        if planned["exercise_id"] not in found
    ]
    if errors:
        raise Conflict("this routine uses custom exercises of its owner that you cannot use", errors=errors)
    store = routines_of(request)
    doc = await store.copy(principal.user_id, source)
    await store.record_use(source["_id"])
    return json_response(await store.present(doc), status=201)


async def rate_routine(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    principal = require_user(request)
    doc = await visible(request, principal)
    if doc.get("owner_id") == principal.user_id:
        raise Forbidden("you cannot rate your own routine")
    body = await read_model(request, RatingRequest)
    rated = await routines_of(request).rate(principal.user_id, doc["_id"], body.stars)
    if rated is None:
        raise NotFound(NO_ROUTINE)
    result = {
        "routine_id": doc["_id"],
        "stars": rated.stars,
        "previous_stars": rated.previous_stars,
        "average": rated.average,
        "count": rated.count,
    }
    event = {**result, "user_id": principal.user_id, "owner_id": doc.get("owner_id")}
    await ctx.publish("routine.rated", event, subject=doc["_id"])
    return json_response(result)


async def my_rating(request: web.Request) -> web.Response:
    principal = require_user(request)
    doc = await visible(request, principal)
    rating = await routines_of(request).rating_of(principal.user_id, doc["_id"])
    if rating is None:
        raise NotFound("you have not rated this routine")
    return json_response(_rating_view(rating))


def _rating_view(rating: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("routine_id", "stars", "created_at", "updated_at")
    return {key: rating[key] for key in keys}


def setup(app: web.Application, ctx: PluginContext) -> None:
    """Routes, the routine store, and template seeding at start (after the catalog loads)."""
    catalog = app[WORKOUTS].catalog  # put there by setup_state, before the areas
    store = RoutineStore(ctx.db, catalog=catalog)
    app[ROUTINES] = store

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await store.create_indexes()
        written = await seed_templates(store, catalog)
        if written:
            ctx.log.info("routine templates written", extra={"templates": written})
        yield

    app.cleanup_ctx.append(lifecycle)
    base = "/api/v1/routines"
    app.router.add_get(base, list_routines)
    app.router.add_post(base, create_routine)
    app.router.add_get(base + "/popular", popular)  # before {routine_id}
    app.router.add_get(base + "/{routine_id}", get_routine)
    app.router.add_patch(base + "/{routine_id}", update_routine)
    app.router.add_delete(base + "/{routine_id}", delete_routine)
    app.router.add_post(base + "/{routine_id}/copy", copy_routine)
    app.router.add_put(base + "/{routine_id}/rating", rate_routine)
    app.router.add_get(base + "/{routine_id}/rating", my_rating)


def openapi() -> dict[str, Any]:
    """This area's paths, schemas and tags."""
    return openapi_routines.spec()
