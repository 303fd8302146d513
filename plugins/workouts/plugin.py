"""The hooks of the workouts plug-in (entry point ``workouts = fittracker_plugins.workouts.plugin``).

The plug-in has four areas, each a module with ``setup(app, ctx)`` (routes and resources)
and ``openapi()`` (its part of the spec): exercises, routines, workouts and progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from fittracker_plugins.workouts import (
    __version__,
    routes_exercises,
    routes_progress,
    routes_routines,
    routes_workouts,
)
from fittracker_plugins.workouts.prefs import UserPrefs
from fittracker_plugins.workouts.state import setup_state

from fittracker import PluginContext, PluginInfo, Setting, hookimpl
from fittracker.bus import Handler
from fittracker.openapi import merge_areas

PREFIXES = ("/api/v1/exercises", "/api/v1/routines", "/api/v1/workouts", "/api/v1/progress")
AREAS = (routes_exercises, routes_routines, routes_workouts, routes_progress)


@hookimpl
def fittracker_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="workouts",
        version=__version__,
        description="Exercise library, routines, workout logging, progress and personal records",
        prefixes=PREFIXES,
    )


@hookimpl
def fittracker_config_defaults() -> Mapping[str, Any]:
    return {
        "max_sets_per_workout": Setting(300, "sets one workout may hold", min=1, max=5000),
        "max_custom_exercises": Setting(500, "custom exercises per user", min=0, max=100_000),
    }


@hookimpl
def fittracker_setup(app: web.Application, ctx: PluginContext) -> None:
    setup_state(app, ctx)
    for area in AREAS:
        area.setup(app, ctx)


@hookimpl
def fittracker_openapi(ctx: PluginContext) -> Mapping[str, Any]:
    return merge_areas(area.openapi() for area in AREAS)


@hookimpl
def fittracker_event_handlers(ctx: PluginContext) -> Mapping[str, Handler]:
    return {"profile.updated": UserPrefs(ctx.db).on_profile_updated}
