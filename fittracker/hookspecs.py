"""THE plug-in contract: every hook FitTracker calls, in the order it calls them.

A plug-in is any object (usually a module) with functions decorated by
``fittracker.hookimpl`` whose names match the hooks below. Built-in and third-party plug-ins
are registered the same way: through the ``fittracker`` entry-point group.

Per-plug-in hooks (``fittracker_plugin_info`` … ``fittracker_health``) are called by the core
once for EACH plug-in with that plug-in's own context; they are never broadcast, so a
plug-in only ever sees its own ``app`` and ``ctx``. Extension points (push providers,
recommenders) are ordinary broadcast hooks that built-in plug-ins call to let others add
behaviour.

Hooks are synchronous; those that need I/O return coroutines or register cleanup contexts,
because an async ``firstresult`` hook would silently return its first coroutine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from fittracker.bus import Handler
    from fittracker.cli_commands import CliCommand
    from fittracker.coaching import Recommender
    from fittracker.context import PluginContext
    from fittracker.plugins import PluginInfo
    from fittracker.push import PushProvider

hookspec = pluggy.HookspecMarker("fittracker")

HealthCheck = Callable[[], Awaitable[None]]

# --- discovery -------------------------------------------------------------------------------


@hookspec
def fittracker_plugin_info() -> PluginInfo:
    """Describe the plug-in. Required of every plug-in.

    Called at discovery, before anything is started: ``fittracker plugins`` and the router
    read it without building the plug-in.

    :returns: a :class:`fittracker.PluginInfo` with the plug-in's ``name`` (also its config
        section and database name), ``version``, ``description`` and the URL ``prefixes`` it
        owns (e.g. ``("/api/v1/auth", "/api/v1/users")``). Prefixes of two plug-ins must not
        overlap; every route the plug-in registers must lie under one of them.
    """
    raise NotImplementedError


@hookspec
def fittracker_config_defaults() -> Mapping[str, Any]:
    """Declare the plug-in's config section (``[<plugin name>]`` in TOML).

    Called when configuration is loaded and validated, before start-up.

    :returns: ``{key: default}``; a default is a plain TOML value (its type is the key's type)
        or a :class:`fittracker.Setting` with choices, bounds and help text. Keys not declared
        here are rejected at start-up with a message naming the valid ones.
    """
    raise NotImplementedError


# --- building the application ----------------------------------------------------------------


@hookspec
def fittracker_setup(app: web.Application, ctx: PluginContext) -> None:
    """Register the plug-in's routes and resources on its OWN sub-application.

    Called once while the application is built, before it is frozen. ``app`` belongs to this
    plug-in alone (``request.app`` inside its handlers); add routes with absolute paths under
    the declared prefixes, and put resources that need start-up/clean-up (indexes, caches,
    background loops) in ``app.cleanup_ctx``. ``ctx.db``, ``ctx.bus`` and ``ctx.jobs`` are
    usable from start-up on, and are closed only after the plug-in's own clean-up ran.

    :returns: nothing.
    """


@hookspec
def fittracker_openapi(ctx: PluginContext) -> Mapping[str, Any]:
    """Contribute to ``GET /api/v1/openapi.json``.

    Called when the spec is assembled (once, at start-up).

    :returns: a partial OpenAPI 3.1 document: ``{"paths": {...}, "components": {"schemas":
        {...}}, "tags": [...]}``. Paths must lie under the plug-in's prefixes; schema names
        must be unique across plug-ins (prefix them if in doubt).
    """
    raise NotImplementedError


# --- running ----------------------------------------------------------------------------------


@hookspec
def fittracker_event_handlers(ctx: PluginContext, app: web.Application) -> Mapping[str, Handler]:
    """Subscribe to events on the bus.

    Called while the application is built, right after ``fittracker_setup`` and with the same
    ``app`` (so handlers can use what setup put on it). The handlers form the consumer group
    named after the plug-in, so in split mode each event is handled once per plug-in whatever
    its number of workers; they receive events from start-up on.
    Delivery is at-least-once: handlers must be idempotent (dedupe by ``event.id``).

    :returns: ``{event type: async handler(event)}``.
    """
    raise NotImplementedError


@hookspec
def fittracker_health(ctx: PluginContext) -> Mapping[str, HealthCheck]:
    """Add health checks beyond the ones the core runs for every plug-in (database, bus).

    Called at start-up; the checks run on every ``/health/services`` and
    ``/api/v1/<prefix>/health`` request.

    :returns: ``{check name: async callable}``; a check passes by returning and fails by
        raising (the exception text becomes the check's ``error``).
    """
    raise NotImplementedError


# --- command line -----------------------------------------------------------------------------


@hookspec
def fittracker_cli_commands() -> Sequence[CliCommand]:
    """Add sub-commands to the ``fittracker`` command line.

    Called when the CLI parser is built.

    :returns: :class:`fittracker.CliCommand` objects; each names its command words (e.g.
        ``("users", "create-admin")``), configures its argparse parser and runs with a
        started :class:`PluginContext` of its plug-in.
    """
    raise NotImplementedError


# --- extension points -------------------------------------------------------------------------


@hookspec
def fittracker_push_providers(ctx: PluginContext) -> Sequence[PushProvider]:
    """Add ways to push a notification to a device (broadcast: every plug-in may answer).

    Called by the notifications plug-in at its start-up, with ITS context (so a provider can
    read that plug-in's settings, e.g. credentials). Providers are keyed by ``platform``;
    a later plug-in's provider for the same platform replaces an earlier one.

    :returns: :class:`fittracker.push.PushProvider` objects (possibly none).
    """
    raise NotImplementedError


@hookspec
def fittracker_recommenders(ctx: PluginContext) -> Sequence[Recommender]:
    """Supply or re-rank the AI's daily recommendations (broadcast: every plug-in may answer).

    Called by the AI plug-in at its start-up, with ITS context. On each recommendation the
    recommenders run in plug-in order over the built-in ranking; the AI plug-in re-applies
    its hard rules to whatever they return (see :mod:`fittracker.coaching`).

    :returns: :class:`fittracker.coaching.Recommender` objects (possibly none).
    """
    raise NotImplementedError
