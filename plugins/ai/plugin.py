"""The hooks of the AI plug-in (entry point ``ai = fittracker_plugins.ai.plugin``).

Its read model (:mod:`.readmodel`, :mod:`.athletes`) is fed by the workouts and users
plug-ins' events. Areas: :mod:`.routes` (recovery, progression, predictions),
:mod:`.routes_coach` (recommendations, alternatives), :mod:`.routes_insights` and
:mod:`.routes_plans`; :mod:`.tips` publishes ``coach.tip`` after each workout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from fittracker_plugins.ai import __version__, routes, routes_coach, routes_insights, routes_plans
from fittracker_plugins.ai.state import AI, BASE, setup_state

from fittracker import PluginContext, PluginInfo, Setting, hookimpl
from fittracker.bus import Handler
from fittracker.openapi import merge_areas

PREFIXES = (BASE,)
AREAS = (routes, routes_coach, routes_insights, routes_plans)


@hookimpl
def fittracker_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="ai",
        version=__version__,
        description="Coaching: recovery, daily recommendations, plans, progression, insights and "
        "predictions, each with a reason",
        prefixes=PREFIXES,
    )


@hookimpl
def fittracker_config_defaults() -> Mapping[str, Any]:
    return {
        "recovery_time_constant_h": Setting(
            36.0, "hours for fatigue to fall to 1/e (about 37 %)", min=6.0, max=168.0
        ),
        "recovery_capacity": Setting(10.0, "fatigue units at which a muscle is 0 % recovered", min=1.0),
        "rep_min": Setting(5, "bottom of the double-progression rep range", min=1, max=30),
        "rep_max": Setting(8, "top of the double-progression rep range", min=1, max=30),
        "target_rpe": Setting(8.0, "RPE that autoregulation aims for", min=5.0, max=10.0),
        "min_recovery_pct": Setting(
            70.0, "recommendations leave out exercises working a muscle less recovered", min=0.0, max=100.0
        ),
        "exercises_per_session": Setting(5, "exercises in a recommended session", min=3, max=10),
        "catalog_ttl_s": Setting(
            600.0, "seconds the exercise catalog read from the workouts API is kept", min=0.0
        ),
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
def fittracker_event_handlers(ctx: PluginContext, app: web.Application) -> Mapping[str, Handler]:
    state = app[AI]
    return {**state.log.handlers(), **state.coach.handlers()}
