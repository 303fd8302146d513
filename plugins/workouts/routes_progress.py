"""``/api/v1/progress``: personal records, per-exercise history, weekly volume and a summary.

Reads only derived documents (see :mod:`.progress`), so they stay fast at years of data.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from fittracker_plugins.workouts.derived import PRIMARY_SHARE, SECONDARY_SHARE
from fittracker_plugins.workouts.logbook import LOGBOOK, logbook_of
from fittracker_plugins.workouts.models_progress import (
    ExerciseHistory,
    HistoryQuery,
    RecordList,
    RecordsQuery,
    Summary,
    SummaryQuery,
    VolumeQuery,
    VolumeReport,
)
from fittracker_plugins.workouts.models_workouts import read_query_by_alias
from fittracker_plugins.workouts.progress import Progress
from fittracker_plugins.workouts.routes_workouts import display_units
from fittracker_plugins.workouts.strength import E1RM_DESCRIPTION

from fittracker import NotFound, PluginContext, require_user
from fittracker.http import json_response, read_query
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as doc_response

BASE = "/api/v1/progress"
TAG = "progress"
PROGRESS = web.AppKey("fittracker_plugins.workouts.progress", Progress)


async def list_records(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, RecordsQuery)
    units = await display_units(request, user.user_id, query.units)
    return json_response(await request.app[PROGRESS].records_of(user.user_id, query.exercise_id, units))


async def exercise_history(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query_by_alias(request, HistoryQuery)
    exercise = await logbook_of(request).catalog.visible(user.user_id, request.match_info["exercise_id"])
    if exercise is None:
        raise NotFound("no exercise with this id is visible to you")
    units = await display_units(request, user.user_id, query.units)
    report = await request.app[PROGRESS].history(
        user.user_id, exercise, query.from_, query.to, query.limit, units
    )
    return json_response(report)


async def weekly_volume(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query_by_alias(request, VolumeQuery)
    units = await display_units(request, user.user_id, query.units)
    return json_response(
        await request.app[PROGRESS].volume(user.user_id, query.from_, query.to, query.group, units)
    )


async def summary(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query_by_alias(request, SummaryQuery)
    units = await display_units(request, user.user_id, query.units)
    return json_response(await request.app[PROGRESS].summary(user.user_id, query.from_, query.to, units))


def setup(app: web.Application, ctx: PluginContext) -> None:
    """Routes; reads the logbook's derived data (set up by the workouts area just before)."""
    logbook = app[LOGBOOK]
    app[PROGRESS] = Progress(logbook.derived, logbook.records, logbook.catalog)
    app.router.add_get(BASE + "/records", list_records)
    app.router.add_get(BASE + "/exercises/{exercise_id}", exercise_history)
    app.router.add_get(BASE + "/volume", weekly_volume)
    app.router.add_get(BASE + "/summary", summary)


WEEKS_NOTE = (
    "Works in whole ISO weeks (Monday-Sunday, UTC): `from` moves back to its Monday, `to` forward to "
    "its Sunday; default the last 12 weeks, at most 260. Volume = sum of weight_kg x reps over "
    "non-warm-up sets (in-progress and finished workouts; discarded ones never count)."
)


def _op(
    op_id: str, summary: str, responses: dict[str, Any], errors: tuple[int, ...], **kw: Any
) -> dict[str, Any]:
    return operation(f"workouts_{op_id}", summary, TAG, responses, errors=errors, security=BEARER, **kw)


def openapi() -> dict[str, Any]:
    exercise_id = {"name": "exercise_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        BASE + "/records": {
            "get": _op(
                "progress_records",
                "Your current personal records",
                {"200": doc_response("Every record held, by exercise", RecordList)},
                (401, 422),
                parameters=query_parameters(RecordsQuery),
                description="Per exercise: heaviest weight, best estimated 1RM, most reps at each weight, "
                "best session volume. " + E1RM_DESCRIPTION,
            )
        },
        BASE + "/exercises/{exercise_id}": {
            "get": _op(
                "progress_exercise",
                "One exercise's history, session by session",
                {"200": doc_response("Sessions oldest first: best set, e1RM, volume, sets", ExerciseHistory)},
                (401, 404, 422),
                parameters=[exercise_id, *query_parameters(HistoryQuery)],
                description="`from`/`to` are inclusive UTC dates; the latest `limit` sessions are kept. "
                + E1RM_DESCRIPTION,
            )
        },
        BASE + "/volume": {
            "get": _op(
                "progress_volume",
                "Weekly training volume per muscle group (or per exercise)",
                {"200": doc_response("Volume per week and in total", VolumeReport)},
                (401, 422),
                parameters=query_parameters(VolumeQuery),
                description=f"With `group=muscle` a set counts {PRIMARY_SHARE} toward each primary muscle of "
                f"its exercise and {SECONDARY_SHARE} toward each secondary one (both kg and set counts). "
                + WEEKS_NOTE,
            )
        },
        BASE + "/summary": {
            "get": _op(
                "progress_summary",
                "Workouts per week, streak, volume and strength change",
                {"200": doc_response("The summary of the period", Summary)},
                (401, 422),
                parameters=query_parameters(SummaryQuery),
                description="`started` counts every workout begun (finished, in progress or discarded). "
                "The streak counts consecutive ISO weeks with a finished workout, up to this week (a week "
                "in progress does not break it). Strength change compares each exercise's first and last "
                "session e1RM in the period. " + WEEKS_NOTE,
            )
        },
    }
    components = schemas(RecordList, ExerciseHistory, VolumeReport, Summary, mode="serialization")
    tags = [{"name": TAG, "description": "Personal records and progress over time."}]
    return {"paths": paths, "schemas": components, "tags": tags}
