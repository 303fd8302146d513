"""What every part of the plug-in shares, built once per application on its sub-app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from fittracker_plugins.workouts.catalog import CUSTOM_CHANGED, Catalog
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

    async def announce(user_id: str, exercise_id: str, change: str) -> None:
        data = {"user_id": user_id, "exercise_id": exercise_id, "change": change}
        await ctx.publish(CUSTOM_CHANGED, data, subject=exercise_id)

    state = Workouts(ctx=ctx, catalog=Catalog(ctx.db, announce=announce), prefs=UserPrefs(ctx.db))
    app[WORKOUTS] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.catalog.start()
        follower = asyncio.create_task(follow_custom_changes(ctx, state.catalog), name="workouts:custom")
        yield
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)

    app.cleanup_ctx.append(lifecycle)
    return state


async def follow_custom_changes(ctx: PluginContext, catalog: Catalog) -> None:
    """Drop a user's cached custom exercises when any process announces a change to them."""
    since = datetime.now(UTC)
    while True:
        try:
            async for event in ctx.bus.tail({CUSTOM_CHANGED}, since):
                since = datetime.fromisoformat(event.time)
                user_id = event.data.get("user_id")
                if isinstance(user_id, str):
                    catalog.custom.forget(user_id)
            return  # the bus closed
        except asyncio.CancelledError:
            raise
        except Exception:
            # Announcements may have been missed: trust nothing cached, then follow again.
            catalog.custom.forget()
            ctx.log.exception("following custom exercise changes failed; retrying")
            await asyncio.sleep(1.0)
