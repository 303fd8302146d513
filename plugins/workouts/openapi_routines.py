"""The routines area's part of ``GET /api/v1/openapi.json``: paths, schemas and tags."""

from __future__ import annotations

from typing import Any

from fittracker_plugins.workouts.models_routines import (
    MyRating,
    PopularPage,
    PopularQuery,
    RatingRequest,
    RatingResult,
    Routine,
    RoutineCreate,
    RoutineListQuery,
    RoutinePage,
    RoutineUpdate,
)
from fittracker_plugins.workouts.routines import PRIOR_COUNT, PRIOR_MEAN, USE_WEIGHT

from fittracker.openapi import BEARER, json_response, operation, query_parameters, schemas

TAG = "routines"
ROUTINE_ID: dict[str, Any] = {
    "name": "routine_id",
    "in": "path",
    "required": True,
    "description": 'a routine id, or a template id such as "template-beginner-full-body"',
    "schema": {"type": "string"},
}
WRITE_ERRORS = (400, 401, 403, 404, 413, 415, 422)
DAYS_TEXT = (
    "1-7 days of 1-20 exercises. Each exercise has `sets` (1-20) and exactly one target: "
    "`reps` (1-100), a range `reps_min`/`reps_max`, or `duration_s`; optional `weight_kg`, "
    "`rest_s` (0-900, default 90), `notes`, and a `superset` label shared by two or more "
    "consecutive exercises of a day. Every `exercise_id` must be a built-in or your own custom "
    "exercise; a 422 names the field, e.g. `days.0.exercises.2.exercise_id`."
)
POPULAR_TEXT = (
    "Templates and public routines ranked by `popularity` = Bayesian average of the stars "
    f"(a prior of {PRIOR_COUNT} ratings of {PRIOR_MEAN:g} stars: "
    f"({PRIOR_COUNT}·{PRIOR_MEAN:g} + Σstars) / ({PRIOR_COUNT} + count)) + "
    f"{USE_WEIGHT:g}·log10(1 + uses). The prior keeps a single 5-star vote from beating many "
    "good ones; the log lets use count without swamping ratings. Ties: more uses first, then id."
)


def _routine(description: str) -> dict[str, Any]:
    return json_response(description, Routine)


def _one(op: str, summary: str, responses: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("parameters", [ROUTINE_ID])
    return operation(op, summary, TAG, responses, security=BEARER, **kwargs)


def paths() -> dict[str, Any]:
    return {
        "/api/v1/routines": {
            "get": operation(
                "workouts_list_routines",
                "List routines",
                TAG,
                {"200": json_response("A page of routines", RoutinePage)},
                errors=(401, 422),
                parameters=query_parameters(RoutineListQuery),
                security=BEARER,
                description="`template=true`: the built-in templates, by name. `mine=true`: your own "
                "routines. Neither: your own plus other users' public routines. Newest first, "
                "cursor-paginated.",
            ),
            "post": operation(
                "workouts_create_routine",
                "Create a routine",
                TAG,
                {"201": _routine("The new routine, owned by the caller")},
                errors=(400, 401, 413, 415, 422),
                body=RoutineCreate,
                security=BEARER,
                description=DAYS_TEXT + " Private unless `visibility` is `public`.",
            ),
        },
        "/api/v1/routines/popular": {
            "get": operation(
                "workouts_popular_routines",
                "Popular routines",
                TAG,
                {"200": json_response("A page of routines, most popular first", PopularPage)},
                errors=(401, 422),
                parameters=query_parameters(PopularQuery),
                security=BEARER,
                description=POPULAR_TEXT,
            )
        },
        "/api/v1/routines/{routine_id}": {
            "get": _one(
                "workouts_get_routine",
                "One routine",
                {"200": _routine("The routine, with exercise names")},
                errors=(401, 404),
                description="Templates, public routines and your own; another user's private "
                "routine is a 404.",
            ),
            "patch": _one(
                "workouts_update_routine",
                "Change your routine",
                {"200": _routine("The updated routine")},
                errors=WRITE_ERRORS,
                body=RoutineUpdate,
                description="Only the fields sent change; `days` is replaced as a whole. Templates "
                "and other users' public routines are a 403. " + DAYS_TEXT,
            ),
            "delete": _one(
                "workouts_delete_routine",
                "Delete your routine",
                {"204": {"description": "Deleted, with its ratings"}},
                errors=(401, 403, 404),
                description="Templates and other users' public routines are a 403.",
            ),
        },
        "/api/v1/routines/{routine_id}/copy": {
            "post": _one(
                "workouts_copy_routine",
                "Copy a routine into a new private one of yours",
                {"201": _routine("The copy (private, `copied_from` set, no ratings)")},
                errors=(401, 404, 409),
                description="Works on templates, public routines and your own. Counts as one use "
                "of the source. 409 if the source uses custom exercises of its owner.",
            )
        },
        "/api/v1/routines/{routine_id}/rating": {
            "put": _one(
                "workouts_rate_routine",
                "Rate a routine 1-5 stars",
                {"200": json_response("Your stars and the routine's new average and count", RatingResult)},
                errors=WRITE_ERRORS,
                body=RatingRequest,
                description="One rating per user; rating again replaces your stars. Your own "
                "routines cannot be rated (403). Publishes `routine.rated` with `routine_id, "
                "owner_id, user_id, stars, previous_stars, average, count`.",
            ),
            "get": _one(
                "workouts_my_routine_rating",
                "Your rating of a routine",
                {"200": json_response("Your rating", MyRating)},
                errors=(401, 404),
                description="404 when you have not rated it (or cannot see it).",
            ),
        },
    }


def spec() -> dict[str, Any]:
    components = {
        **schemas(RoutineCreate, RoutineUpdate, RatingRequest),
        **schemas(Routine, RoutinePage, PopularPage, MyRating, RatingResult, mode="serialization"),
    }
    tag = {"name": TAG, "description": "Training routines: built-in templates, your own, public ones."}
    return {"paths": paths(), "schemas": components, "tags": [tag]}
