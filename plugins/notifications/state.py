"""What every part of the plug-in shares, built once per application on its sub-app.

The delivery pipeline (push and email) plugs in through one seam: when
``fittracker_plugins.notifications.delivery`` exists, its ``Dispatcher(ctx)`` is started and
closed with the application and receives every push/email hand-off; until then a
:class:`NullDispatcher` stands in.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import cast

from aiohttp import web
from fittracker_plugins.notifications.hub import Hub
from fittracker_plugins.notifications.inbox import Inbox
from fittracker_plugins.notifications.prefs import PreferenceStore
from fittracker_plugins.notifications.readmodels import Directory, Follows
from fittracker_plugins.notifications.service import DispatcherLike, Notifier, NullDispatcher
from fittracker_plugins.notifications.stream import Stream

from fittracker import PluginContext

DELIVERY_MODULE = "fittracker_plugins.notifications.delivery"


@dataclass(frozen=True, slots=True)
class Notifications:
    ctx: PluginContext
    stream: Stream
    directory: Directory
    follows: Follows
    prefs: PreferenceStore
    notifier: Notifier
    inbox: Inbox
    hub: Hub


NOTIFICATIONS = web.AppKey("fittracker_plugins.notifications", Notifications)


def notifications_of(request: web.Request) -> Notifications:
    return request.app[NOTIFICATIONS]


def _delivery() -> ModuleType | None:
    try:
        return importlib.import_module(DELIVERY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != DELIVERY_MODULE:
            raise  # the pipeline exists but is broken: say so rather than drop every push
        return None


def make_dispatcher(ctx: PluginContext) -> DispatcherLike:
    """The delivery pipeline's dispatcher, or a stand-in while it is not installed."""
    module = _delivery()
    return NullDispatcher(ctx) if module is None else cast(DispatcherLike, module.Dispatcher(ctx))


def build(ctx: PluginContext) -> Notifications:
    """The shared services, without resources (also used by the event handlers)."""
    stream = Stream(ctx, ctx.db)
    directory = Directory(ctx.db)
    prefs = PreferenceStore(ctx.db, directory)
    notifier = Notifier(ctx, ctx.db, stream, prefs, make_dispatcher(ctx))
    return Notifications(
        ctx=ctx,
        stream=stream,
        directory=directory,
        follows=Follows(ctx.db),
        prefs=prefs,
        notifier=notifier,
        inbox=Inbox(stream),
        hub=Hub(ctx),
    )


def setup_state(app: web.Application, ctx: PluginContext, state: Notifications) -> None:
    app[NOTIFICATIONS] = state
    module = _delivery()
    key = getattr(module, "DISPATCHER", None)
    if isinstance(key, web.AppKey):
        app[key] = state.notifier.dispatcher  # the devices area asks it which platforms exist

    async def maintenance() -> None:
        await state.stream.prune_old()
        await state.notifier.forget_old_claims()

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.stream.create_indexes()
        await state.follows.create_indexes()
        await state.notifier.create_indexes()
        await state.notifier.dispatcher.start()
        state.hub.start(maintenance)
        yield
        await state.hub.close()
        await state.notifier.dispatcher.close()

    async def going_away(_app: web.Application) -> None:
        await state.hub.close()  # before the bus closes: sockets get 1001, not a dead tail

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(going_away)
