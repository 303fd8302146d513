"""``/api/v1/exercises``: search and facets over the catalog, and custom exercises.

Every endpoint needs a bearer token, so a caller's own custom exercises can be included.
A custom exercise of another user does not exist for the caller (404, never listed);
built-ins are read-only (403 on change).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from fittracker_plugins.workouts.catalog import SearchFilter
from fittracker_plugins.workouts.models_catalog import (
    ExerciseCreate,
    ExercisePage,
    ExerciseQuery,
    ExerciseUpdate,
    Facets,
    FacetsQuery,
    vocabulary_text,
)
from fittracker_plugins.workouts.state import workouts_of

from fittracker import Conflict, Forbidden, NotFound, PluginContext, require_user
from fittracker.http import json_response, no_content, parse_model, read_model, read_query
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as json_doc

NO_EXERCISE = "no exercise with this id"
READ_ONLY = "built-in exercises are read-only; create a custom exercise (POST /api/v1/exercises) instead"


def _filter(query: FacetsQuery) -> SearchFilter:
    return SearchFilter(
        q=query.q or None,
        category=query.category,
        muscle=query.muscle,
        equipment=query.equipment,
        level=query.level,
    )


async def search(request: web.Request) -> web.Response:
    principal = require_user(request)
    query = read_query(request, ExerciseQuery)
    items, total = await workouts_of(request).catalog.search(
        principal.user_id, _filter(query), query.limit, query.offset
    )
    return json_response({"items": items, "total": total, "limit": query.limit, "offset": query.offset})


async def facets(request: web.Request) -> web.Response:
    principal = require_user(request)
    query = read_query(request, FacetsQuery)
    counts = await workouts_of(request).catalog.facets(principal.user_id, _filter(query))
    # Every exercise has exactly one level, so the level counts add up to the matches.
    return json_response({"total": sum(counts["level"].values()), **counts})


async def get_exercise(request: web.Request) -> web.Response:
    principal = require_user(request)
    exercise = await workouts_of(request).catalog.visible(
        principal.user_id, request.match_info["exercise_id"]
    )
    if exercise is None:
        raise NotFound(NO_EXERCISE)
    return json_response(exercise)


async def create_exercise(request: web.Request) -> web.Response:
    principal = require_user(request)
    state = workouts_of(request)
    body = await read_model(request, ExerciseCreate)
    limit = int(state.ctx.settings["max_custom_exercises"])
    catalog = state.catalog
    if await catalog.exercises.count({"owner_id": principal.user_id}) >= limit:
        raise Conflict(f"you already have {limit} custom exercises, the most allowed; delete one first")
    created = await catalog.create_custom(principal.user_id, body.model_dump())
    # Two concurrent creates may both pass the check above: re-count and undo the extra one.
    if await catalog.exercises.count({"owner_id": principal.user_id}) > limit:
        await catalog.delete_custom(principal.user_id, created["id"])
        raise Conflict(f"you already have {limit} custom exercises, the most allowed; delete one first")
    return json_response(created, status=201)


async def update_exercise(request: web.Request) -> web.Response:
    principal = require_user(request)
    catalog = workouts_of(request).catalog
    exercise_id = request.match_info["exercise_id"]
    if catalog.builtin(exercise_id) is not None:
        raise Forbidden(READ_ONLY)
    current = await catalog.visible(principal.user_id, exercise_id)
    if current is None:
        raise NotFound(NO_EXERCISE)
    changes = (await read_model(request, ExerciseUpdate)).model_dump(exclude_unset=True)
    # Validate the result as a whole (e.g. a new primary muscle that is already secondary).
    merged = parse_model(ExerciseCreate, {**_editable(current), **changes})
    fields = {key: value for key, value in merged.model_dump().items() if key in changes}
    updated = await catalog.update_custom(principal.user_id, exercise_id, fields)
    if updated is None:  # deleted meanwhile
        raise NotFound(NO_EXERCISE)
    return json_response(updated)


def _editable(exercise: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in exercise.items() if key in ExerciseCreate.model_fields}


async def delete_exercise(request: web.Request) -> web.Response:
    principal = require_user(request)
    catalog = workouts_of(request).catalog
    exercise_id = request.match_info["exercise_id"]
    if catalog.builtin(exercise_id) is not None:
        raise Forbidden(READ_ONLY)
    if not await catalog.delete_custom(principal.user_id, exercise_id):
        raise NotFound(NO_EXERCISE)
    return no_content()


def setup(app: web.Application, ctx: PluginContext) -> None:
    """Register this area's routes on the plug-in's sub-app (facets before ``{exercise_id}``)."""
    app.router.add_get("/api/v1/exercises", search)
    app.router.add_post("/api/v1/exercises", create_exercise)
    app.router.add_get("/api/v1/exercises/facets", facets)
    app.router.add_get("/api/v1/exercises/{exercise_id}", get_exercise)
    app.router.add_patch("/api/v1/exercises/{exercise_id}", update_exercise)
    app.router.add_delete("/api/v1/exercises/{exercise_id}", delete_exercise)


# --- OpenAPI -----------------------------------------------------------------------------------

TAG = "exercises"
EXERCISE_ID: dict[str, Any] = {
    "name": "exercise_id",
    "in": "path",
    "required": True,
    "description": 'a built-in id (e.g. "Barbell_Squat") or a custom one ("custom-…")',
    "schema": {"type": "string"},
}
SEARCH_TEXT = (
    "Every word of `q` must begin a word of the name, case-insensitively (`bench` finds "
    '"Barbell Bench Press - Medium Grip"; `bench press` needs both words). `category`, '
    "`equipment` and `level` match exactly, `muscle` matches primary or secondary muscles; a "
    "value outside the vocabulary matches nothing. The caller's custom exercises come first, "
    "then built-ins by name."
)


def _exercise_doc(description: str) -> dict[str, Any]:
    return json_doc(description, {"$ref": "#/components/schemas/Exercise"})


def openapi() -> dict[str, Any]:
    """This area's paths, schemas and tags."""
    mutate = "Only your own custom exercises can change: a built-in is a 403, another user's a 404."
    paths = {
        "/api/v1/exercises": {
            "get": operation(
                "workouts_search_exercises",
                "Search the exercise library",
                TAG,
                {"200": json_doc("A page of matching exercises with the total", ExercisePage)},
                errors=(401, 422),
                parameters=query_parameters(ExerciseQuery),
                security=BEARER,
                description=SEARCH_TEXT,
            ),
            "post": operation(
                "workouts_create_exercise",
                "Create a custom exercise",
                TAG,
                {"201": _exercise_doc("The new exercise, owned by (and visible only to) the caller")},
                errors=(400, 401, 409, 413, 415, 422),
                body=ExerciseCreate,
                security=BEARER,
                description="Values come from the catalog's vocabulary: "
                + vocabulary_text()
                + ". 1-5 primary and 0-8 secondary muscles, none in both lists. A user may own at "
                "most `max_custom_exercises` (setting) custom exercises; past that, 409.",
            ),
        },
        "/api/v1/exercises/facets": {
            "get": operation(
                "workouts_exercise_facets",
                "Counts per category, muscle, equipment and level",
                TAG,
                {"200": json_doc("Counts over the matching exercises", Facets)},
                errors=(401, 422),
                parameters=query_parameters(FacetsQuery),
                security=BEARER,
                description="Same filters as the search. A muscle counts an exercise where it is "
                "primary or secondary; exercises without equipment are not counted under `equipment`.",
            )
        },
        "/api/v1/exercises/{exercise_id}": {
            "get": operation(
                "workouts_get_exercise",
                "One exercise",
                TAG,
                {"200": _exercise_doc("The exercise")},
                errors=(401, 404),
                parameters=[EXERCISE_ID],
                security=BEARER,
                description="A built-in or one of your custom exercises; anything else is a 404.",
            ),
            "patch": operation(
                "workouts_update_exercise",
                "Change a custom exercise",
                TAG,
                {"200": _exercise_doc("The updated exercise")},
                errors=(400, 401, 403, 404, 413, 415, 422),
                body=ExerciseUpdate,
                parameters=[EXERCISE_ID],
                security=BEARER,
                description=mutate + " Only the fields sent change.",
            ),
            "delete": operation(
                "workouts_delete_exercise",
                "Delete a custom exercise",
                TAG,
                {"204": {"description": "Deleted"}},
                errors=(401, 403, 404),
                parameters=[EXERCISE_ID],
                security=BEARER,
                description=mutate,
            ),
        },
    }
    components = {
        **schemas(ExerciseCreate, ExerciseUpdate),
        **schemas(ExercisePage, Facets, mode="serialization"),
    }
    tag = {"name": TAG, "description": "The exercise library: built-in catalog and your custom exercises."}
    return {"paths": paths, "schemas": components, "tags": [tag]}
