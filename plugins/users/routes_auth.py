"""``/api/v1/auth``: register, login, refresh, logout, me.

Passwords and tokens are never logged and never published; only user ids are.
"""

from __future__ import annotations

from aiohttp import web
from fittracker_plugins.users.models import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserAccount,
)
from fittracker_plugins.users.state import Users, current_user, users_of
from fittracker_plugins.users.store import Document, EmailTaken

from fittracker import (
    Conflict,
    PluginContext,
    Unauthorized,
    ValidationFailed,
    client_ip,
    plugin_context,
    require_user,
)
from fittracker.http import json_response, no_content, read_model

BAD_CREDENTIALS = "invalid email or password"
EMAIL_TAKEN = "an account with this email address already exists"


def account_view(doc: Document) -> UserAccount:
    return UserAccount(
        id=doc["_id"], email=doc["email"], name=doc["name"], role=doc["role"], created_at=doc["created_at"]
    )


def check_password_policy(password: str, min_length: int) -> None:
    """The configured minimum length (the model already enforces 8-128 characters)."""
    if len(password) < min_length:
        raise ValidationFailed(
            "the request is not valid",
            errors=[{"field": "password", "message": f"String should have at least {min_length} characters"}],
        )


async def issue_pair(ctx: PluginContext, users: Users, doc: Document, family: str) -> TokenPair:
    """A new access token and refresh token in session ``family`` for the account ``doc``."""
    access = ctx.auth.issue(doc["_id"], doc["role"], family)
    await users.sessions.remember_access(family, access.jti, access.exp)
    refresh = await users.sessions.issue_refresh(doc["_id"], family)
    return TokenPair(
        user=account_view(doc),
        access_token=access.token,
        refresh_token=refresh,
        token_type="Bearer",  # noqa: S106 - the scheme name
        expires_in=access.expires_in,
    )


async def register(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    users = users_of(request)
    body = await read_model(request, RegisterRequest)
    check_password_policy(body.password, users.password_min_length)
    if await users.store.by_email(body.email) is not None:  # fast path; the unique index decides
        raise Conflict(EMAIL_TAKEN)
    password_hash = await users.passwords.hash(body.password)
    try:
        doc = await users.store.create_user(email=body.email, name=body.name, password_hash=password_hash)
    except EmailTaken:
        raise Conflict(EMAIL_TAKEN) from None
    ctx.log.info("account registered", extra={"user_id": doc["_id"]})
    await ctx.publish(
        "user.registered",
        {"user_id": doc["_id"], "email": doc["email"], "name": doc["name"]},
        subject=doc["_id"],
    )
    family = await users.sessions.start(doc["_id"])
    return json_response(await issue_pair(ctx, users, doc, family), status=201)


async def login(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    users = users_of(request)
    body = await read_model(request, LoginRequest)
    ip = client_ip(request)
    if users.throttle_enabled:
        await users.throttle.check(body.email, ip)
    doc = await users.store.by_email(body.email)
    if doc is None:
        await users.passwords.verify_dummy(body.password)  # same work as a real verify
        ok = False
    else:
        ok = await users.passwords.verify(doc["password_hash"], body.password)
    if doc is None or not ok:
        if users.throttle_enabled:
            await users.throttle.record_failure(body.email, ip)
        ctx.log.info("login failed", extra={"client_ip": ip})
        raise Unauthorized(BAD_CREDENTIALS)
    if users.throttle_enabled:
        await users.throttle.clear(body.email)
    if users.passwords.needs_rehash(doc["password_hash"]):
        await users.store.set_password_hash(doc["_id"], await users.passwords.hash(body.password))
        ctx.log.info("password re-hashed with the current parameters", extra={"user_id": doc["_id"]})
    family = await users.sessions.start(doc["_id"])
    return json_response(await issue_pair(ctx, users, doc, family))


async def refresh(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    users = users_of(request)
    body = await read_model(request, RefreshRequest)
    rotated = await users.sessions.rotate(body.refresh_token)
    doc = await users.store.get(rotated.user_id)
    if doc is None:
        await users.sessions.revoke_family(rotated.family)
        raise Unauthorized("the account of this session no longer exists")
    return json_response(await issue_pair(ctx, users, doc, rotated.family))


async def logout(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    principal = require_user(request)
    await ctx.auth.revoke(principal.jti, principal.exp)
    await users_of(request).sessions.revoke_family(principal.sid)
    return no_content()


async def me(request: web.Request) -> web.Response:
    principal = require_user(request)
    return json_response(account_view(await current_user(request, principal.user_id)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/register", register)
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/refresh", refresh)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/auth/me", me)
