"""What the plug-in's parts share, built once per application and hung on its sub-app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from fittracker_plugins.ai.catalog import CatalogSource
from fittracker_plugins.ai.progression import ProgressionParams
from fittracker_plugins.ai.readmodel import TrainingLog
from fittracker_plugins.ai.recovery import RecoveryParams
from fittracker_plugins.ai.tips import Coach

from fittracker import PluginContext
from fittracker.coaching import Recommender


@dataclass(frozen=True, slots=True)
class Ai:
    ctx: PluginContext
    log: TrainingLog
    recovery: RecoveryParams
    progression: ProgressionParams
    catalog: CatalogSource
    coach: Coach
    recommenders: list[Recommender] = field(default_factory=list)


AI = web.AppKey("fittracker_plugins.ai", Ai)
BASE = "/api/v1/ai"  # the plug-in's one route prefix
TAG = "ai"  # its OpenAPI tag


def ai_of(request: web.Request) -> Ai:
    return request.app[AI]


def bearer_token(request: web.Request) -> str:
    """The caller's access token, relayed when the AI calls another plug-in on their behalf."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("access_token", "")


def hook_recommenders(ctx: PluginContext) -> list[Recommender]:
    """Recommenders from plug-ins, in registration order (the first re-ranks first)."""
    if ctx.hooks is None:
        return []
    answers = ctx.hooks.fittracker_recommenders(ctx=ctx)
    # pluggy calls the most recently registered implementation first.
    return [recommender for answer in reversed(answers) for recommender in answer or ()]


def setup_state(app: web.Application, ctx: PluginContext) -> Ai:
    """Put :class:`Ai` on ``app``; an empty read model is rebuilt in the background at start-up."""
    settings = ctx.settings
    rep_min, rep_max = int(settings["rep_min"]), int(settings["rep_max"])
    if rep_min > rep_max:
        raise ValueError(f"ai: rep_min ({rep_min}) must not exceed rep_max ({rep_max})")
    log = TrainingLog(ctx.db)
    progression = ProgressionParams(rep_min, rep_max, float(settings["target_rpe"]))
    state = Ai(
        ctx=ctx,
        log=log,
        recovery=RecoveryParams(
            time_constant_h=float(settings["recovery_time_constant_h"]),
            capacity=float(settings["recovery_capacity"]),
        ),
        progression=progression,
        catalog=CatalogSource(ctx.services, float(settings["catalog_ttl_s"])),
        coach=Coach(ctx, log, progression),
    )
    app[AI] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.log.start()
        state.recommenders[:] = hook_recommenders(ctx)
        # In the background: a long log must not delay start-up; live events keep flowing meanwhile.
        await ctx.jobs.spawn(state.log.rebuild_if_empty(ctx))
        yield

    app.cleanup_ctx.append(lifecycle)
    return state
