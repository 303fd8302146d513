"""``/api/v1/ai/recommendations`` and ``/api/v1/ai/exercises/{id}/alternatives``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from fittracker_plugins.ai import selection
from fittracker_plugins.ai.catalog import Catalog, Exercise
from fittracker_plugins.ai.models_coach import (
    Alternatives,
    AlternativesQuery,
    Recommendation,
    RecommendationQuery,
)
from fittracker_plugins.ai.state import BASE, TAG, Ai, ai_of, bearer_token
from fittracker_plugins.ai.today import Request
from fittracker_plugins.ai.today import recommend as recommend_today

from fittracker import NotFound, PluginContext, require_user
from fittracker.http import json_response, read_query
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as doc_response


async def recommendations(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, RecommendationQuery)
    state = ai_of(request)
    catalog = await state.catalog.get(bearer_token(request))
    athlete = await state.log.athletes.get(user.user_id)
    body = await recommend_today(
        state, athlete, catalog, Request(user.user_id, datetime.now(UTC), query.count, query.units)
    )
    return json_response(body)


async def _source(state: Ai, catalog: Catalog, user_id: str, exercise_id: str) -> Exercise:
    found = catalog.by_id.get(exercise_id)
    if found is not None:
        return found
    # A custom exercise the user has logged: the read model learns every user's, so check the
    # sets (another user's custom exercise does not exist for this one).
    mine = await state.log.exercise_sets(user_id, exercise_id, last=1)
    learned = await state.log.exercise(exercise_id) if mine else None
    if learned is None:
        raise NotFound(f"no exercise {exercise_id!r} in the catalog or in your logged sets")
    return Exercise.from_api({"id": exercise_id, **learned})


async def alternatives(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, AlternativesQuery)
    state = ai_of(request)
    catalog = await state.catalog.get(bearer_token(request))
    source = await _source(state, catalog, user.user_id, request.match_info["exercise_id"])
    athlete = await state.log.athletes.get(user.user_id)
    c = selection.Constraints.of(athlete)
    primary = source.primary_muscles[0] if source.primary_muscles else None
    skip = {source.id}
    same = selection.rank(catalog, c, patterns={source.pattern}, muscle=primary, skip=skip)
    items = [_item(choice, source, same_pattern=True) for choice in same[: query.limit]]
    if len(items) < query.limit and primary is not None:
        skip |= {item["exercise_id"] for item in items}
        near = selection.rank(catalog, c, muscle=primary, skip=skip)
        # Same side of the body's work (push, pull, legs) first: a press for a press.
        near.sort(key=lambda ch: (ch.exercise.group != source.group, -ch.score, ch.exercise.name))
        items += [_item(ch, source, same_pattern=False) for ch in near[: query.limit - len(items)]]
    pattern = source.pattern.replace("_", " ")
    reason = (
        f"exercises with {source.name}'s movement ({pattern}) and primary muscle ({primary or 'none'}) "
        f"that suit you ({c.describe()}), best first"
    )
    if not same:
        reason += f"; none has the same movement, so the closest for {primary or 'its muscles'} follow"
    body = {
        "exercise_id": source.id,
        "exercise_name": source.name,
        "pattern": source.pattern,
        "primary_muscles": list(source.primary_muscles),
        "items": items,
        "reason": reason,
    }
    return json_response(body)


def _item(choice: selection.Choice, source: Exercise, *, same_pattern: bool) -> dict[str, Any]:
    e = choice.exercise
    what = (
        f"same movement ({e.pattern.replace('_', ' ')}) and primary muscle"
        if same_pattern
        else f"same primary muscle, a {e.pattern.replace('_', ' ')} movement"
    )
    gear = "no equipment" if e.equipment in (None, "body only") else e.equipment
    return {
        "exercise_id": e.id,
        "exercise_name": e.name,
        "pattern": e.pattern,
        "equipment": e.equipment,
        "primary_muscles": list(e.primary_muscles),
        "same_pattern": same_pattern,
        "score": round(choice.score, 3),
        "reason": f"{what} as {source.name}; uses {gear}" + (f"; {choice.reason}" if choice.reason else ""),
    }


def setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_get(BASE + "/recommendations", recommendations)
    app.router.add_get(BASE + "/exercises/{exercise_id}/alternatives", alternatives)


def openapi() -> dict[str, Any]:
    exercise_id = {"name": "exercise_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        BASE + "/recommendations": {
            "get": operation(
                "ai_recommendations",
                "Today's workout: exercises, sets, reps and weights, each with its reason",
                TAG,
                {"200": doc_response("Today's recommended session (or a rest day)", Recommendation)},
                errors=(401, 422, 503),
                security=BEARER,
                parameters=query_parameters(RecommendationQuery),
                description="Only exercises your equipment allows, without excluded muscles, with every "
                "muscle they work at least `ai.min_recovery_pct` recovered, and not done yesterday; "
                "chosen greedily by the muscles' remaining weekly sets, push/pull balance and "
                "preference; recommender plug-ins may re-rank (`ranked_by`), the hard rules are "
                "applied again afterwards (`overridden`). Weights come from your last sessions.",
            )
        },
        BASE + "/exercises/{exercise_id}/alternatives": {
            "get": operation(
                "ai_alternatives",
                "Exercises that can replace one, with your equipment",
                TAG,
                {"200": doc_response("Ranked alternatives with reasons", Alternatives)},
                errors=(401, 404, 422, 503),
                security=BEARER,
                parameters=[exercise_id, *query_parameters(AlternativesQuery)],
                description="Same movement pattern and primary muscle first (ranked by staple, "
                "familiarity, compound, loadable, level), then the same primary muscle.",
            )
        },
    }
    return {"paths": paths, "schemas": schemas(Recommendation, Alternatives)}
