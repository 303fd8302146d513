"""``/api/v1/ai``: recovery, progression and predictions, read from the plug-in's own training log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from fittracker_plugins.ai import predictions
from fittracker_plugins.ai.goals import progression_params
from fittracker_plugins.ai.models import (
    NoQuery,
    Prediction,
    PredictionQuery,
    Progression,
    RecoveryReport,
    UnitsQuery,
)
from fittracker_plugins.ai.progression import prescribe, sessions_of
from fittracker_plugins.ai.recovery import WINDOW, muscle_report
from fittracker_plugins.ai.state import BASE, TAG, ai_of
from fittracker_plugins.ai.units import shown

from fittracker import NotFound, PluginContext, ValidationFailed, require_user
from fittracker.http import json_response, read_query
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as doc_response


async def recovery(request: web.Request) -> web.Response:
    user = require_user(request)
    read_query(request, NoQuery)
    state = ai_of(request)
    now = datetime.now(UTC)
    sets = await state.log.sets_since(user.user_id, now - WINDOW)
    report = {"muscles": muscle_report(sets, now, state.recovery), "model": state.recovery.describe()}
    return json_response(report)


async def progression(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, UnitsQuery)
    state = ai_of(request)
    exercise_id = request.match_info["exercise_id"]
    sets = await state.log.exercise_sets(user.user_id, exercise_id)
    sessions = sessions_of(sets)
    if not sessions:
        raise NotFound(
            f"you have logged no work sets of exercise {exercise_id!r}, so there is nothing to progress from"
        )
    last = sessions[-1]
    athlete = await state.log.athletes.get(user.user_id)
    known = await state.log.exercise(exercise_id) or {}
    params = progression_params(athlete, state.progression, known.get("mechanic"))
    plan = prescribe(sessions, last.sets[-1].get("primary_muscles") or [], params)
    units = query.units or "kg"
    body = {
        "exercise_id": exercise_id,
        "exercise_name": await state.log.exercise_name(exercise_id) or exercise_id,
        "units": units,
        "method": plan["method"],
        "target": {
            "weight": shown(plan["weight_kg"], units),
            "weight_kg": plan["weight_kg"],
            "reps": plan["reps"],
            "sets": plan["sets"],
        },
        "reason": plan["reason"],
        "last_session": {
            "workout_id": last.workout_id,
            "date": last.at.date().isoformat(),
            "top_weight_kg": last.top_weight,
            "reps": [int(s["reps"]) for s in last.sets],
            "e1rm_kg": last.e1rm,
        },
        "sessions": len(sessions),
        "model": asdict(params),
    }
    return json_response(body)


def no_history(exercise_id: str) -> str:
    return f"you have logged no work sets of exercise {exercise_id!r}, so there is nothing to go on"


async def prediction(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, PredictionQuery)
    state = ai_of(request)
    exercise_id = request.match_info["exercise_id"]
    sessions = sessions_of(await state.log.exercise_sets(user.user_id, exercise_id))
    if not sessions:
        raise NotFound(no_history(exercise_id))
    measured = [s for s in sessions if s.e1rm > 0]  # sets above 12 reps give no estimate
    why = predictions.refusal(measured)
    if why is not None:
        raise ValidationFailed(f"no projection: {why}", errors=[{"field": "exercise_id", "message": why}])
    body = {
        "exercise_id": exercise_id,
        "exercise_name": await state.log.exercise_name(exercise_id) or exercise_id,
        **predictions.project(measured, query.weeks),
        "model": {
            "method": "Theil-Sen (median of pairwise slopes) over per-session Epley e1RM",
            "band": "2 x 1.4826 x MAD of residuals x sqrt(1 + days_ahead / days_of_history)",
            "min_sessions": predictions.MIN_SESSIONS,
            "min_days": predictions.MIN_DAYS,
        },
    }
    return json_response(body)


def setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_get(BASE + "/recovery", recovery)
    app.router.add_get(BASE + "/progression/{exercise_id}", progression)
    app.router.add_get(BASE + "/predictions/{exercise_id}", prediction)


def openapi() -> dict[str, Any]:
    exercise_id = {"name": "exercise_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        BASE + "/recovery": {
            "get": operation(
                "ai_recovery",
                "Per-muscle recovery from your last 7 days of work sets",
                TAG,
                {
                    "200": doc_response(
                        "Muscles trained in the last 7 days, least recovered first", RecoveryReport
                    )
                },
                errors=(401, 422),
                security=BEARER,
                description="Each work set adds RPE/10 fatigue units to its primary muscles and half that to "
                "its secondary ones (missing RPE counts as 7); fatigue decays as "
                "exp(-hours/time_constant_h); "
                "recovery_pct = 100 x (1 - fatigue/capacity). Parameters are returned in `model`.",
            )
        },
        BASE + "/progression/{exercise_id}": {
            "get": operation(
                "ai_progression",
                "Next session's target for one exercise",
                TAG,
                {"200": doc_response("Target weight, reps and sets with the reason", Progression)},
                errors=(401, 404, 422),
                security=BEARER,
                parameters=[exercise_id, *query_parameters(UnitsQuery)],
                description="Deload after a stall (no new best e1RM in 3+ sessions over 21+ days), else "
                "RPE autoregulation (3 % per RPE point off the target) when RPE is logged, else double "
                "progression in the rep range.",
            )
        },
        BASE + "/predictions/{exercise_id}": {
            "get": operation(
                "ai_predictions",
                "Projected e1RM for one exercise, with an uncertainty band",
                TAG,
                {
                    "200": doc_response(
                        "Per-session e1RM, the robust trend and a weekly projection", Prediction
                    )
                },
                errors=(401, 404, 422),
                security=BEARER,
                parameters=[exercise_id, *query_parameters(PredictionQuery)],
                description="Theil-Sen slope through per-session e1RM; band from the median absolute "
                "residual, widening with the horizon. 422 with the reason when there are fewer than 6 "
                "sessions or under 21 days of history.",
            )
        },
    }
    return {
        "paths": paths,
        "schemas": schemas(RecoveryReport, Progression, Prediction),
        "tags": [{"name": TAG, "description": "Coaching: every suggestion with its reason"}],
    }
