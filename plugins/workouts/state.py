"""What every part of the plug-in shares, built once per application on its sub-app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web
from fittracker_plugins.workouts.catalog import CUSTOM_CHANGED, Catalog
from fittracker_plugins.workouts.prefs import UserPrefs

from fittracker import PluginContext
from fittracker.bus import Event


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

    async def announce(user_id: str, exercise_id: str, change: str) -> None:
        data = {"user_id": user_id, "exercise_id": exercise_id, "change": change}
        await ctx.publish(CUSTOM_CHANGED, data, subject=exercise_id)

    state = Workouts(ctx=ctx, catalog=Catalog(ctx.db, announce=announce), prefs=UserPrefs(ctx.db))
    app[WORKOUTS] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.catalog.start()
        # Announcements missed while the tail was down: trust nothing cached.
        follow = ctx.follow(
            {CUSTOM_CHANGED}, forget_changed(state.catalog), on_gap=state.catalog.custom.forget
        )
        follower = asyncio.create_task(follow, name="workouts:custom")
        yield
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)

    app.cleanup_ctx.append(lifecycle)
    return state


def forget_changed(catalog: Catalog) -> Callable[[Event], None]:
    """Drop a user's cached custom exercises when any process announces a change to them."""

    def handle(event: Event) -> None:
        user_id = event.data.get("user_id")
        if isinstance(user_id, str):
            catalog.custom.forget(user_id)

    return handle
