"""The plug-in's services, built once per application and kept on its sub-application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from fittracker_plugins.users.passwords import Passwords
from fittracker_plugins.users.sessions import Sessions
from fittracker_plugins.users.store import Document, UserStore
from fittracker_plugins.users.throttle import LoginThrottle

from fittracker import PluginContext, Unauthorized


@dataclass(frozen=True, slots=True)
class Users:
    """Everything the handlers share: stores, hashing, sessions, throttling, settings."""

    store: UserStore
    sessions: Sessions
    throttle: LoginThrottle
    passwords: Passwords
    password_min_length: int
    throttle_enabled: bool

    @classmethod
    def from_context(cls, ctx: PluginContext) -> Users:
        settings = ctx.settings
        return cls(
            store=UserStore(ctx.db),
            sessions=Sessions(
                ctx.db, ctx.auth, refresh_ttl_s=int(ctx.config.section("auth")["refresh_ttl_s"])
            ),
            throttle=LoginThrottle(
                ctx.db,
                max_failures=int(settings["login_max_failures"]),
                ip_max_failures=int(settings["login_ip_max_failures"]),
                window_s=int(settings["login_window_s"]),
            ),
            passwords=Passwords.from_settings(settings),
            password_min_length=int(settings["password_min_length"]),
            throttle_enabled=bool(settings["login_throttle"]),
        )

    async def start(self) -> None:
        """Create indexes, forget stale data, and prepare the dummy password hash."""
        await self.store.create_indexes()
        await self.sessions.create_indexes()
        await self.throttle.create_indexes()
        await self.sessions.purge_expired()
        await self.throttle.purge()
        await self.passwords.warm_up()


USERS = web.AppKey("fittracker_plugins.users", Users)


def users_of(request: web.Request) -> Users:
    return request.app[USERS]


def setup_state(app: web.Application, ctx: PluginContext) -> Users:
    """Put :class:`Users` on ``app`` and start it with the application."""
    users = Users.from_context(ctx)
    app[USERS] = users

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await users.start()
        yield

    app.cleanup_ctx.append(lifecycle)
    return users


async def current_user(request: web.Request, user_id: str) -> Document:
    """The caller's account; 401 if it no longer exists."""
    doc = await users_of(request).store.get(user_id)
    if doc is None:
        raise Unauthorized("the account of this token no longer exists")
    return doc
