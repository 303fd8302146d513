"""``/api/v1/ai/plans``: multi-week training plans (:mod:`.plans`), saved per user, and turned into
routines of the workouts plug-in through its public API.

A plan is built from the request, the profile the AI keeps (equipment, experience, excluded
muscles), the exercise catalog read through ``GET /api/v1/exercises`` and how often the user
logged each exercise in the last 12 weeks (familiar lifts rank first). Plans live in collection
``plans`` of the plug-in's own database, indexed by (owner_id, created_at); every access filters
by owner, so another user's plan is a 404, never a 403. Lists page newest first by cursor.

``POST /plans/{id}/routine`` posts the plan's first week as a private routine to
``/api/v1/routines`` on the caller's behalf (through the server's front door, so it works in
split mode) and remembers its id. Asked again while that routine exists, it answers 409 naming
it; if the user deleted the routine, a new one is made. The workouts plug-in refusing the
routine is a 502 with its detail; not reaching it, a 503.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from fittracker_plugins.ai import plans
from fittracker_plugins.ai.models_plans import Plan, PlanListQuery, PlanPage, PlanRequest, PlanRoutine
from fittracker_plugins.ai.selection import Constraints
from fittracker_plugins.ai.state import BASE as AI_BASE
from fittracker_plugins.ai.state import TAG, Ai, ai_of, bearer_token

from fittracker import (
    Conflict,
    NotFound,
    PluginContext,
    ProblemError,
    ServiceUnavailable,
    ValidationFailed,
    require_user,
)
from fittracker.http import json_response, no_content, read_model, read_query
from fittracker.http.pagination import after_cursor, encode_cursor
from fittracker.ids import random_hex
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as doc_response
from fittracker.services import ServiceResponse
from fittracker.storage import Collection, Database, Document

BASE = f"{AI_BASE}/plans"
ROUTINES = "/api/v1/routines"
FAMILIAR_WINDOW = timedelta(weeks=12)
NO_PLAN = "no plan with this id"
# The workouts plug-in's routine limits (RoutineCreate), applied before posting.
DAY_NAME_MAX, NOTES_MAX, NAME_MAX, DESCRIPTION_MAX, REST_MAX_S = 50, 500, 100, 1000, 900
SUMMARY_KEYS = ("name", "created_at", "request", "routine_id", "split", "reason")
PLAN_KEYS = (*SUMMARY_KEYS, "weeks", "weekly_sets", "volume", "progression")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class PlanStore:
    def __init__(self, db: Database) -> None:
        self.plans: Collection = db.collection("plans")

    async def create_indexes(self) -> None:
        await self.plans.create_index([("owner_id", 1), ("created_at", -1), ("_id", -1)])

    async def create(self, owner_id: str, fields: Mapping[str, Any]) -> Document:
        """A new plan of ``owner_id``; ``fields`` are the name, request and the built plan."""
        doc = {
            **fields,
            "_id": random_hex(),
            "owner_id": owner_id,
            "created_at": now_iso(),
            "routine_id": None,
        }
        return await self.plans.insert_one(doc)

    async def get(self, owner_id: str, plan_id: str) -> Document | None:
        return await self.plans.find_one({"_id": plan_id, "owner_id": owner_id})

    async def page(self, owner_id: str, limit: int, cursor: str | None) -> tuple[list[Document], str | None]:
        """The owner's plans, newest first, and the cursor of the next page (None on the last)."""
        clauses = [{"owner_id": owner_id}, *after_cursor("created_at", "_id", cursor, descending=True)]
        docs = await self.plans.find(
            {"$and": clauses}, sort=[("created_at", -1), ("_id", -1)], limit=limit + 1
        )
        if len(docs) <= limit:
            return docs, None
        docs = docs[:limit]
        return docs, encode_cursor(str(docs[-1]["created_at"]), str(docs[-1]["_id"]))

    async def delete(self, owner_id: str, plan_id: str) -> bool:
        return await self.plans.delete_one({"_id": plan_id, "owner_id": owner_id}) == 1

    async def link_routine(
        self, owner_id: str, plan_id: str, routine_id: str, replaces: str | None
    ) -> Document | None:
        """Record the plan's routine if the plan still points at ``replaces`` (None: no routine yet);
        None when another request linked one first (or the plan was deleted meanwhile)."""
        return await self.plans.update_one(
            {"_id": plan_id, "owner_id": owner_id, "routine_id": replaces},
            {"$set": {"routine_id": routine_id}},
        )


def summary_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], **{key: doc.get(key) for key in SUMMARY_KEYS}}


def plan_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], **{key: doc.get(key) for key in PLAN_KEYS}}


PLANS = web.AppKey("fittracker_plugins.ai.plans", PlanStore)


def plans_of(request: web.Request) -> PlanStore:
    return request.app[PLANS]


class BadGateway(ProblemError):
    status, title, slug = 502, "Bad Gateway", "bad-gateway"


async def create_plan(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await read_model(request, PlanRequest)
    state = ai_of(request)
    athlete = await state.log.athletes.get(user.user_id)
    c = Constraints.of(
        athlete,
        equipment=body.equipment,
        experience=body.experience,
        excluded_muscles=body.excluded_muscles or (),
    )
    catalog = await state.catalog.get(bearer_token(request))
    familiar = await state.log.familiar(user.user_id, datetime.now(UTC) - FAMILIAR_WINDOW)
    try:
        built = plans.build_plan(body, c, catalog, familiar)
    except plans.PlanError as exc:
        raise ValidationFailed(
            f"no plan: {exc}", errors=[{"field": "equipment", "message": str(exc)}]
        ) from None
    resolved = {
        "goal": body.goal,
        "days_per_week": body.days_per_week,
        "session_minutes": body.session_minutes,
        "equipment": list(athlete.equipment if body.equipment is None else body.equipment),
        "experience": c.experience,
        "weeks": body.weeks,
        "excluded_muscles": sorted(c.excluded_muscles),
    }
    name = (
        body.name
        or f"{body.goal.replace('_', ' ').capitalize()}: {body.days_per_week} days a week, {body.weeks} weeks"
    )
    doc = await plans_of(request).create(user.user_id, {"name": name, "request": resolved, **built})
    return json_response(plan_view(doc), status=201, headers={"Location": f"{BASE}/{doc['_id']}"})


async def list_plans(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, PlanListQuery)
    docs, next_cursor = await plans_of(request).page(user.user_id, query.limit, query.cursor)
    return json_response({"items": [summary_view(doc) for doc in docs], "next_cursor": next_cursor})


async def owned(request: web.Request, store: PlanStore) -> dict[str, Any]:
    user = require_user(request)
    doc = await store.get(user.user_id, request.match_info["plan_id"])
    if doc is None:
        raise NotFound(NO_PLAN)
    return doc


async def get_plan(request: web.Request) -> web.Response:
    return json_response(plan_view(await owned(request, plans_of(request))))


async def delete_plan(request: web.Request) -> web.Response:
    user = require_user(request)
    if not await plans_of(request).delete(user.user_id, request.match_info["plan_id"]):
        raise NotFound(NO_PLAN)
    return no_content()


def routine_body(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's first week as a ``RoutineCreate`` of the workouts API (its limits applied)."""
    days = []
    for day in doc["weeks"][0]["days"]:
        exercises = []
        for ex in day["exercises"]:
            target = (
                {"duration_s": ex["duration_s"]}
                if ex.get("duration_s")
                else {"reps_min": ex["reps_min"], "reps_max": ex["reps_max"]}
            )
            exercises.append(
                {
                    "exercise_id": ex["exercise_id"],
                    "sets": ex["sets"],
                    **target,
                    "rest_s": min(int(ex["rest_s"]), REST_MAX_S),
                    "notes": str(ex["reason"])[:NOTES_MAX],
                }
            )
        days.append({"name": str(day["name"])[:DAY_NAME_MAX], "exercises": exercises})
    description = f"{doc['reason']}. Progression: {doc['progression']['reason']}"
    return {
        "name": str(doc["name"])[:NAME_MAX],
        "description": description[:DESCRIPTION_MAX],
        "visibility": "private",
        "days": days,
    }


async def call_workouts(state: Ai, method: str, path: str, token: str, **kwargs: Any) -> ServiceResponse:
    """One call to the workouts API; 503 when it cannot be reached."""
    try:
        return await state.ctx.services.request(method, path, token=token, **kwargs)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            f"the workouts plug-in could not be reached: {exc or type(exc).__name__}"
        ) from None


def refused(resp: ServiceResponse, what: str) -> ProblemError:
    """A failed answer of the workouts plug-in as our problem: its 4xx is a 502, the rest a 503."""
    problem = resp.body if isinstance(resp.body, Mapping) else {}
    text = f"{what} answered {resp.status}: {problem.get('detail') or 'no detail'}"
    if 400 <= resp.status < 500:
        return BadGateway(text, errors=problem.get("errors") or None)
    return ServiceUnavailable(text)


async def make_routine(request: web.Request) -> web.Response:
    user = require_user(request)
    store, state, token = plans_of(request), ai_of(request), bearer_token(request)
    doc = await owned(request, store)
    existing = doc.get("routine_id")
    if existing:
        resp = await call_workouts(state, "GET", f"{ROUTINES}/{existing}", token)
        if resp.ok:
            raise Conflict(
                f"this plan is already routine {existing}; delete that routine to make a new one",
                extra={"routine_id": existing},
            )
        if resp.status != 404:
            raise refused(resp, f"GET {ROUTINES}/{existing}")
    resp = await call_workouts(state, "POST", ROUTINES, token, json=routine_body(doc))
    if resp.status != 201 or not isinstance(resp.body, Mapping) or "id" not in resp.body:
        raise refused(resp, f"POST {ROUTINES}")
    routine_id = str(resp.body["id"])
    if await store.link_routine(user.user_id, doc["_id"], routine_id, existing) is None:
        # Another request linked a routine first (or the plan is gone): do not leave ours behind.
        with contextlib.suppress(ProblemError):
            await call_workouts(state, "DELETE", f"{ROUTINES}/{routine_id}", token)
        raise Conflict("this plan was turned into a routine by another request meanwhile")
    body = {"plan_id": doc["_id"], "routine_id": routine_id, "routine": resp.body}
    return json_response(body, status=201, headers={"Location": f"{ROUTINES}/{routine_id}"})


def setup(app: web.Application, ctx: PluginContext) -> None:
    store = PlanStore(ctx.db)
    app[PLANS] = store

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await store.create_indexes()
        yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(BASE, create_plan)
    app.router.add_get(BASE, list_plans)
    app.router.add_get(BASE + "/{plan_id}", get_plan)
    app.router.add_delete(BASE + "/{plan_id}", delete_plan)
    app.router.add_post(BASE + "/{plan_id}/routine", make_routine)


def openapi() -> dict[str, Any]:
    plan_id = {"name": "plan_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        BASE: {
            "post": operation(
                "ai_create_plan",
                "Build and save a multi-week training plan",
                TAG,
                {"201": doc_response("The saved plan: weeks of days of exercises, each with a reason", Plan)},
                # read_model answers malformed JSON (400) and oversized bodies (413) too.
                errors=(400, 401, 413, 415, 422, 503),
                body=PlanRequest,
                security=BEARER,
                description="Split by days a week (full body, upper/lower, push/pull/legs); exercises by "
                "movement pattern from the exercises your equipment and experience allow; reps, rest and "
                "RPE by goal; weekly sets per major muscle (primary 1, secondary 0.5) within the range "
                "for your experience (beginner 6-10, intermediate 10-16, advanced 12-20) and your session "
                "time; a progression scheme by experience; the last week a deload. Omitted equipment, "
                "experience and excluded muscles come from your profile. 422 when a day would be empty.",
            ),
            "get": operation(
                "ai_list_plans",
                "Your saved plans, newest first",
                TAG,
                {"200": doc_response("A page of plan summaries", PlanPage)},
                errors=(401, 422),
                security=BEARER,
                parameters=query_parameters(PlanListQuery),
            ),
        },
        BASE + "/{plan_id}": {
            "get": operation(
                "ai_get_plan",
                "One of your plans",
                TAG,
                {"200": doc_response("The plan", Plan)},
                errors=(401, 404),
                security=BEARER,
                parameters=[plan_id],
            ),
            "delete": operation(
                "ai_delete_plan",
                "Delete one of your plans (a routine made from it stays)",
                TAG,
                {"204": {"description": "Deleted"}},
                errors=(401, 404),
                security=BEARER,
                parameters=[plan_id],
            ),
        },
        BASE + "/{plan_id}/routine": {
            "post": operation(
                "ai_plan_routine",
                "Turn the plan's first week into a private routine of the workouts plug-in",
                TAG,
                {"201": doc_response("The routine made, as the workouts plug-in answered", PlanRoutine)},
                errors=(401, 404, 409, 502, 503),
                security=BEARER,
                parameters=[plan_id],
                description="One routine day per plan day, with sets, rep ranges (or hold times), rest "
                "and the exercise's reason as notes. 409 while the routine made earlier still exists; "
                "502 when the workouts plug-in refuses the routine, 503 when it cannot be reached.",
            )
        },
    }
    return {"paths": paths, "schemas": schemas(PlanRequest, Plan, PlanPage, PlanRoutine)}
