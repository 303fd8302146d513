"""What every part of the plug-in shares, built once per application on its sub-app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.prefs import UserPrefs

from fittracker import PluginContext


@dataclass(frozen=True, slots=True)
class Workouts:
    """The plug-in context plus the shared stores: the exercise catalog and user preferences."""

    ctx: PluginContext
    catalog: Catalog
    prefs: UserPrefs


WORKOUTS = web.AppKey("fittracker_plugins.workouts", Workouts)


def workouts_of(request: web.Request) -> Workouts:
    return request.app[WORKOUTS]


def setup_state(app: web.Application, ctx: PluginContext) -> Workouts:
    """Put :class:`Workouts` on ``app``; the catalog loads with the application."""
    state = Workouts(ctx=ctx, catalog=Catalog(ctx.db), prefs=UserPrefs(ctx.db))
    app[WORKOUTS] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.catalog.start()
        yield

    app.cleanup_ctx.append(lifecycle)
    return state
