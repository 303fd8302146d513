"""``GET /api/v1/ai/insights``: plateaus, load spikes, imbalances, consistency, best times.

The figures come from :mod:`.insights` over the last 12 weeks of the plug-in's own training log,
in the user's time zone (from their profile; UTC when unknown).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from fittracker_plugins.ai.insights import HISTORY, describe, insights
from fittracker_plugins.ai.models import NoQuery
from fittracker_plugins.ai.models_insights import InsightsReport
from fittracker_plugins.ai.state import BASE, TAG, ai_of

from fittracker import PluginContext, require_user
from fittracker.http import json_response, read_query
from fittracker.openapi import BEARER, operation, schemas
from fittracker.openapi import json_response as doc_response

DESCRIPTION = (
    "plateau: Theil-Sen slope of per-session Epley e1RM over 6 weeks under +0.5 % of the median per "
    "week. load_spike (a flag, not a diagnosis): daily load = sum of reps x (weight_kg or 1) x RPE/10 "
    "(missing RPE 7); acute:chronic ratio of exponentially weighted averages, lambda = 2/(N+1) with "
    "N = 7 and 28 days; > 1.5 flags, > 2.0 high, < 0.8 low; needs 28 days. imbalance: upper-body push "
    "vs pull sets and quadriceps vs hamstrings (secondary 0.5) over 4 weeks, beyond 1.5:1 low, 2:1 "
    "medium. consistency: sessions per week over 8 weeks, last 2 vs the 6 before. best_times: weekdays "
    "and 3-hour bands in your time zone, and e1RM vs trend by band. Parameters are returned in `model`."
)


async def get_insights(request: web.Request) -> web.Response:
    user = require_user(request)
    read_query(request, NoQuery)
    state = ai_of(request)
    now = datetime.now(UTC)
    sets = await state.log.sets_since(user.user_id, now - HISTORY)
    athlete = await state.log.athletes.get(user.user_id)
    names: dict[str, str] = {}
    for exercise_id in {str(s["exercise_id"]) for s in sets}:
        names[exercise_id] = await state.log.exercise_name(exercise_id) or exercise_id
    found = insights(sets, now, athlete.zone, names)
    return json_response({"insights": found, "model": describe()})


def setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_get(BASE + "/insights", get_insights)


def openapi() -> dict[str, Any]:
    paths = {
        BASE + "/insights": {
            "get": operation(
                "ai_insights",
                "Plateaus, load spikes, imbalances, consistency and best times from your last 12 weeks",
                TAG,
                {"200": doc_response("Insights, most severe first, each with a reason", InsightsReport)},
                errors=(401, 422),
                security=BEARER,
                description=DESCRIPTION,
            )
        },
    }
    return {"paths": paths, "schemas": schemas(InsightsReport)}
