"""The hooks of the notifications plug-in (``notifications = fittracker_plugins.notifications.plugin``).

Areas, each a module with ``setup(app, ctx)`` and ``openapi()``: the live stream (``routes_ws``),
the inbox, preferences and, once the delivery pipeline is installed, push devices.

The event rules are subscribed from ``fittracker_setup`` with ``ctx.bus.subscribe(ctx.name,
...)``: the same consumer group ``fittracker_event_handlers`` would form, but sharing the one
started dispatcher with the application (hooks share nothing but ``ctx``, which carries no
plug-in state).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from aiohttp import web
from fittracker_plugins.notifications import __version__, routes_inbox, routes_preferences, routes_ws
from fittracker_plugins.notifications.rules import Rules
from fittracker_plugins.notifications.state import build, setup_state

from fittracker import PluginContext, PluginInfo, Setting, hookimpl

PREFIXES = ("/api/v1/notifications",)
# Parts of the delivery pipeline, used when they are installed.
OPTIONAL_AREAS = ("fittracker_plugins.notifications.routes_devices",)
OPTIONAL_DEFAULTS = ("fittracker_plugins.notifications.delivery_policy", "DELIVERY_DEFAULTS")

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
}


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _areas() -> list[Any]:
    areas: list[Any] = [routes_ws, routes_inbox, routes_preferences]
    return areas + [m for m in map(_optional, OPTIONAL_AREAS) if m is not None]


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
    module, attribute = OPTIONAL_DEFAULTS
    delivery = _optional(module)
    return {**DEFAULTS, **(getattr(delivery, attribute) if delivery is not None else {})}


@hookimpl
def fittracker_setup(app: web.Application, ctx: PluginContext) -> None:
    state = build(ctx)
    setup_state(app, ctx, state)
    for area in _areas():
        area.setup(app, ctx)
    ctx.bus.subscribe(ctx.name, Rules(state.notifier, state.directory, state.follows).handlers())


@hookimpl
def fittracker_openapi(ctx: PluginContext) -> Mapping[str, Any]:
    spec: dict[str, Any] = {"paths": {}, "components": {"schemas": {}}, "tags": []}
    for area in _areas():
        part = area.openapi()
        spec["paths"].update(part.get("paths", {}))
        spec["components"]["schemas"].update(part.get("schemas", {}))
        spec["tags"].extend(part.get("tags", []))
    return spec
