"""The hooks of the notifications plug-in (``notifications = fittracker_plugins.notifications.plugin``).

Areas, each a module with ``setup(app, ctx)`` and ``openapi()``: the live stream (``routes_ws``),
the inbox, preferences, push devices, bulk sends, scheduled sends (with the inactivity
reminder) and delivery stats. The event rules use the services that
``fittracker_setup`` put on the plug-in's app, so they share its started dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from fittracker_plugins.notifications import (
    __version__,
    routes_bulk,
    routes_devices,
    routes_inbox,
    routes_preferences,
    routes_schedule,
    routes_stats,
    routes_ws,
)
from fittracker_plugins.notifications.delivery_policy import DELIVERY_DEFAULTS
from fittracker_plugins.notifications.routes_schedule import SCHEDULE
from fittracker_plugins.notifications.rules import Rules
from fittracker_plugins.notifications.state import NOTIFICATIONS, build, setup_state

from fittracker import PluginContext, PluginInfo, Setting, hookimpl
from fittracker.bus import Handler
from fittracker.openapi import merge_areas

PREFIXES = ("/api/v1/notifications",)
AREAS = (
    routes_ws,
    routes_inbox,
    routes_preferences,
    routes_devices,
    routes_bulk,
    routes_schedule,
    routes_stats,
)

DEFAULTS: dict[str, Setting] = {
    "send_queue_size": Setting(
        256, "messages waiting per WebSocket before the client is closed (1013)", min=1
    ),
    "max_message_bytes": Setting(4096, "largest message a client may send on the WebSocket", min=256),
    "heartbeat_s": Setting(
        25.0, "seconds between WebSocket pings; a peer that misses a pong is dropped", min=1
    ),
    "auth_check_interval_s": Setting(
        5.0, "how often open sockets' tokens are re-checked (4001 when gone)", min=0.05
    ),
    "gap_wait_s": Setting(
        0.25, "how long a message waits for an earlier one still in flight", min=0.0, max=10.0
    ),
    "retain_per_user": Setting(1000, "stream entries (inbox included) kept per user", min=10),
    "retain_days": Setting(30.0, "stream entries older than this are deleted", min=0.01),
    "idempotency_ttl_s": Setting(86_400, "how long an idempotency key returns its first notification", min=1),
    # bulk sends
    "bulk_batch_size": Setting(
        100, "recipients per bulk batch (progress is saved after each)", min=1, max=1000
    ),
    "bulk_concurrency": Setting(8, "sends in flight per bulk job", min=1, max=256),
    "bulk_pause_s": Setting(0.0, "pause between two batches of a bulk job (spares the database)", min=0.0),
    "bulk_lease_s": Setting(
        30.0, "a bulk job whose process stops renewing this long is resumed elsewhere", min=0.5
    ),
    "bulk_poll_s": Setting(2.0, "how often idle processes look for bulk jobs to resume", min=0.05),
    # scheduled sends and reminders
    "scheduled_poll_s": Setting(
        0.5, "longest sleep of the scheduler (items other processes add)", min=0.01, max=1.0
    ),
    "scheduled_lease_s": Setting(
        30.0, "an item whose firing process died is fired again after this", min=0.5
    ),
    "reminder_after_days": Setting(3.0, "days without a workout before a reminder; 0 disables", min=0.0),
}


@hookimpl
def fittracker_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="notifications",
        version=__version__,
        description="Live WebSocket stream with resume, inbox, preferences, push and email",
        prefixes=PREFIXES,
    )


@hookimpl
def fittracker_config_defaults() -> Mapping[str, Any]:
    return {**DEFAULTS, **DELIVERY_DEFAULTS}


@hookimpl
def fittracker_setup(app: web.Application, ctx: PluginContext) -> None:
    setup_state(app, ctx, build(ctx))
    for area in AREAS:
        area.setup(app, ctx)


@hookimpl
def fittracker_event_handlers(ctx: PluginContext, app: web.Application) -> Mapping[str, Handler]:
    state = app[NOTIFICATIONS]
    return Rules(state.notifier, state.directory, state.follows, app[SCHEDULE].reminders).handlers()


@hookimpl
def fittracker_openapi(ctx: PluginContext) -> Mapping[str, Any]:
    return merge_areas(area.openapi() for area in AREAS)
