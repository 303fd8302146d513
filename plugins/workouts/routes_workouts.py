"""``/api/v1/workouts``: start, log sets, edit, finish, discard, list and delete workouts.

Another user's workout (or set) is a 404, never a 403: ids of others' data reveal nothing.
Weights are shown in the caller's profile unit unless ``?units=`` says otherwise.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp import web
from fittracker_plugins.workouts.logbook import logbook_of, setup_logbook
from fittracker_plugins.workouts.models_workouts import (
    LoggedSet,
    SetCreate,
    SetUpdate,
    UnitsQuery,
    Workout,
    WorkoutCreate,
    WorkoutListQuery,
    WorkoutPage,
    WorkoutSet,
    WorkoutSummary,
    WorkoutUpdate,
    read_query_by_alias,
)
from fittracker_plugins.workouts.state import WORKOUTS, workouts_of
from fittracker_plugins.workouts.strength import E1RM_DESCRIPTION
from fittracker_plugins.workouts.units import Units
from fittracker_plugins.workouts.views import item_view, record_view, set_view, summary_view, workout_view
from fittracker_plugins.workouts.workouts_store import iso

from fittracker import PluginContext, idempotency, require_user
from fittracker.http import json_response, no_content, read_model, read_query
from fittracker.idempotency import key_of
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as doc_response

BASE = "/api/v1/workouts"
TAG = "workouts"


async def display_units(request: web.Request, user_id: str, asked: Units | None) -> Units:
    """``?units=`` if given, else the user's profile unit."""
    return asked or await workouts_of(request).prefs.units(user_id)


async def create_workout(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    body = await read_model(request, WorkoutCreate)
    fields: dict[str, Any] = body.model_dump(exclude_none=True)
    if body.started_at is not None:
        fields["started_at"] = iso(body.started_at)
    doc, replayed = await logbook_of(request).start_workout(user.user_id, fields, key_of(request))
    units = await display_units(request, user.user_id, query.units)
    return json_response(workout_view(doc, units), status=201, headers=REPLAY if replayed else None)


async def list_workouts(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query_by_alias(request, WorkoutListQuery)
    start = f"{query.from_.isoformat()}T00:00:00" if query.from_ else None
    end = f"{(query.to + timedelta(days=1)).isoformat()}T00:00:00" if query.to else None
    docs, next_cursor = await logbook_of(request).store.page(
        user.user_id, start=start, end=end, status=query.status, limit=query.limit, cursor=query.cursor
    )
    units = await display_units(request, user.user_id, query.units)
    return json_response({"items": [item_view(d, units) for d in docs], "next_cursor": next_cursor})


async def get_workout(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    doc = await logbook_of(request).get(user.user_id, request.match_info["workout_id"])
    return json_response(workout_view(doc, await display_units(request, user.user_id, query.units)))


async def update_workout(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    body = await read_model(request, WorkoutUpdate)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "started_at" in changes:
        if body.started_at is None:
            changes.pop("started_at")
        else:
            changes["started_at"] = iso(body.started_at)
    doc = await logbook_of(request).update_workout(user.user_id, request.match_info["workout_id"], changes)
    return json_response(workout_view(doc, await display_units(request, user.user_id, query.units)))


async def delete_workout(request: web.Request) -> web.Response:
    user = require_user(request)
    await logbook_of(request).delete(user.user_id, request.match_info["workout_id"])
    return no_content()


async def discard_workout(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    doc = await logbook_of(request).discard(user.user_id, request.match_info["workout_id"])
    return json_response(workout_view(doc, await display_units(request, user.user_id, query.units)))


async def finish_workout(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    summary = await logbook_of(request).finish(user.user_id, request.match_info["workout_id"])
    return json_response(summary_view(summary, await display_units(request, user.user_id, query.units)))


async def log_set(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    body = await read_model(request, SetCreate)
    key = key_of(request)
    (item, won, replayed), units = await asyncio.gather(  # the preference read rides along
        logbook_of(request).log_set(user.user_id, request.match_info["workout_id"], body, key),
        display_units(request, user.user_id, query.units),
    )
    return json_response(
        {**set_view(item, units), "records": [record_view(r, units) for r in won]},
        status=201,
        headers=REPLAY if replayed else None,
    )


async def edit_set(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    body = await read_model(request, SetUpdate)
    workout_id, set_id = request.match_info["workout_id"], request.match_info["set_id"]
    item = await logbook_of(request).edit_set(user.user_id, workout_id, set_id, body)
    return json_response(set_view(item, await display_units(request, user.user_id, query.units)))


async def delete_set(request: web.Request) -> web.Response:
    user = require_user(request)
    workout_id, set_id = request.match_info["workout_id"], request.match_info["set_id"]
    await logbook_of(request).delete_set(user.user_id, workout_id, set_id)
    return no_content()


def setup(app: web.Application, ctx: PluginContext) -> None:
    """Routes, and the logbook (stores, derived data, records) the progress area reads too."""
    state = app[WORKOUTS]
    setup_logbook(app, ctx, state.catalog, state.prefs)
    app.router.add_post(BASE, create_workout)
    app.router.add_get(BASE, list_workouts)
    app.router.add_get(BASE + "/{workout_id}", get_workout)
    app.router.add_patch(BASE + "/{workout_id}", update_workout)
    app.router.add_delete(BASE + "/{workout_id}", delete_workout)
    app.router.add_post(BASE + "/{workout_id}/discard", discard_workout)
    app.router.add_post(BASE + "/{workout_id}/finish", finish_workout)
    app.router.add_post(BASE + "/{workout_id}/sets", log_set)
    app.router.add_patch(BASE + "/{workout_id}/sets/{set_id}", edit_set)
    app.router.add_delete(BASE + "/{workout_id}/sets/{set_id}", delete_set)


# --- OpenAPI ---------------------------------------------------------------------------------

WORKOUT_ID = {"name": "workout_id", "in": "path", "required": True, "schema": {"type": "string"}}
SET_ID = {"name": "set_id", "in": "path", "required": True, "schema": {"type": "string"}}
UNITS = query_parameters(UnitsQuery)
IDEMPOTENCY_KEY = idempotency.OPENAPI_PARAMETER
REPLAY = {idempotency.REPLAYED: "true"}


def replayable(response: dict[str, Any]) -> dict[str, Any]:
    """A 201 that may be the stored answer to an earlier request with the same key."""
    return {**response, "headers": {idempotency.REPLAYED: idempotency.OPENAPI_REPLAYED_HEADER}}


RECORDS_NOTE = (
    "Records (heaviest weight, best e1RM, most reps at a weight) are detected as sets are logged "
    "and announced once each as `record.achieved`; best session volume is checked at finish. "
    + E1RM_DESCRIPTION
)


def _op(
    op_id: str, summary: str, responses: dict[str, Any], errors: tuple[int, ...], **kw: Any
) -> dict[str, Any]:
    return operation(f"workouts_{op_id}", summary, TAG, responses, errors=errors, security=BEARER, **kw)


def openapi() -> dict[str, Any]:
    one = [WORKOUT_ID, *UNITS]
    one_set = [WORKOUT_ID, SET_ID, *UNITS]
    write = (400, 401, 404, 409, 413, 415, 422)
    paths = {
        BASE: {
            "post": _op(
                "start",
                "Start a workout",
                {"201": replayable(doc_response("The workout, in progress", Workout))},
                (400, 401, 413, 415, 422),
                body=WorkoutCreate,
                parameters=[*UNITS, IDEMPOTENCY_KEY],
                description="With `routine_id` (and `day_index`, default 0) the day's exercises and targets "
                "are attached as `plan` and the routine's use is counted. Publishes `workout.started`. "
                "Safe to retry with an `Idempotency-Key`.",
            ),
            "get": _op(
                "list",
                "List your workouts, newest first",
                {"200": doc_response("A page of workouts (without their sets)", WorkoutPage)},
                (401, 422),
                parameters=query_parameters(WorkoutListQuery),
                description="`from`/`to` are UTC dates of `started_at`, both inclusive. Cursor pagination.",
            ),
        },
        BASE + "/{workout_id}": {
            "get": _op(
                "get",
                "A workout with its sets",
                {"200": doc_response("The workout", Workout)},
                (401, 404, 422),
                parameters=one,
            ),
            "patch": _op(
                "update",
                "Rename, annotate or re-date a workout",
                {"200": doc_response("The workout", Workout)},
                write,
                body=WorkoutUpdate,
                parameters=one,
                description="Publishes `workout.updated`.",
            ),
            "delete": _op(
                "delete",
                "Delete a workout and its sets",
                {"204": {"description": "Deleted; records are recomputed from what remains"}},
                (401, 404, 409),
                parameters=[WORKOUT_ID],
                description="Publishes `workout.deleted`. Records it held are recomputed silently.",
            ),
        },
        BASE + "/{workout_id}/discard": {
            "post": _op(
                "discard",
                "Discard a workout in progress",
                {"200": doc_response("The discarded workout", Workout)},
                (401, 404, 409, 422),
                parameters=one,
                description="Idempotent. Its sets stop counting toward progress and records "
                "(recomputed silently). A finished workout cannot be discarded (409): delete it. "
                "Publishes `workout.discarded`.",
            )
        },
        BASE + "/{workout_id}/finish": {
            "post": _op(
                "finish",
                "Finish a workout",
                {"200": doc_response("The summary", WorkoutSummary)},
                (401, 404, 409, 422),
                parameters=one,
                description="Idempotent: finishing again answers the same summary and announces nothing. "
                "Checks best session volume records, then publishes `workout.completed` (every set, each "
                "exercise's muscles, the records). " + RECORDS_NOTE,
            )
        },
        BASE + "/{workout_id}/sets": {
            "post": _op(
                "log_set",
                "Log a set",
                {"201": replayable(doc_response("The stored set and the records it broke", LoggedSet))},
                write,
                body=SetCreate,
                parameters=[*one, IDEMPOTENCY_KEY],
                description="Exactly one of `weight_kg` / `weight_lb`; stored in kg (1 lb = 0.45359237 kg). "
                "409 on a finished or discarded workout, or past `max_sets_per_workout`; 422 if the "
                "exercise is not visible to you. Publishes `workout.set_logged`. Safe to retry with an "
                "`Idempotency-Key` (keys are per workout). " + RECORDS_NOTE,
            )
        },
        BASE + "/{workout_id}/sets/{set_id}": {
            "patch": _op(
                "update_set",
                "Correct a set",
                {"200": doc_response("The set", WorkoutSet)},
                write,
                body=SetUpdate,
                parameters=one_set,
                description="Also on finished workouts. The exercise's records are recomputed from the "
                "remaining data (no announcements). Publishes `workout.set_updated`.",
            ),
            "delete": _op(
                "delete_set",
                "Delete a set",
                {"204": {"description": "Deleted"}},
                (401, 404, 409),
                parameters=[WORKOUT_ID, SET_ID],
                description="Records are recomputed silently. Publishes `workout.set_deleted`.",
            ),
        },
    }
    components = {
        **schemas(WorkoutCreate, WorkoutUpdate, SetCreate, SetUpdate),
        **schemas(Workout, WorkoutPage, LoggedSet, WorkoutSet, WorkoutSummary, mode="serialization"),
    }
    tags = [{"name": TAG, "description": "Log workouts set by set; finish, edit, discard, list."}]
    return {"paths": paths, "schemas": components, "tags": tags}
