"""What every part of the plug-in shares, built once per application on its sub-app.

The delivery pipeline (push and email) is one :class:`~.delivery.Dispatcher`, started and
closed with the application; the notifier hands it every push/email send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from fittracker_plugins.notifications.delivery import DISPATCHER, Dispatcher
from fittracker_plugins.notifications.hub import Hub
from fittracker_plugins.notifications.inbox import Inbox
from fittracker_plugins.notifications.prefs import PreferenceStore
from fittracker_plugins.notifications.readmodels import Directory, Follows
from fittracker_plugins.notifications.service import Notifier
from fittracker_plugins.notifications.stream import Stream

from fittracker import PluginContext


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


def build(ctx: PluginContext) -> Notifications:
    """The shared services, without resources (also used by the event handlers)."""
    stream = Stream(ctx, ctx.db)
    directory = Directory(ctx.db)
    prefs = PreferenceStore(ctx.db, directory)
    dispatcher = Dispatcher(ctx)
    notifier = Notifier(ctx, ctx.db, stream, prefs, dispatcher, in_app=dispatcher)
    return Notifications(
        ctx=ctx,
        stream=stream,
        directory=directory,
        follows=Follows(ctx.db),
        prefs=prefs,
        notifier=notifier,
        inbox=Inbox(stream, in_app=dispatcher),
        hub=Hub(ctx),
    )


def setup_state(app: web.Application, ctx: PluginContext, state: Notifications) -> None:
    app[NOTIFICATIONS] = state
    dispatcher = state.notifier.dispatcher
    assert isinstance(dispatcher, Dispatcher)
    app[DISPATCHER] = dispatcher  # the devices area asks it which platforms exist

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
