"""``/api/v1/notifications/devices``: the caller's push devices (register, list, delete).

A device is a platform plus the token its provider needs: an FCM registration token, an APNs
device token (hex), or, for ``webhook``, the https URL that receives signed POSTs. Platforms
that plug-ins add through ``fittracker_push_providers`` are accepted too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from fittracker_plugins.notifications.delivery import DISPATCHER
from fittracker_plugins.notifications.delivery_senders import hook_providers
from fittracker_plugins.notifications.devices import (
    BUILTIN_PLATFORMS,
    DeviceError,
    DeviceStore,
    check_token,
    public,
)
from pydantic import BaseModel, ConfigDict, Field

from fittracker import Conflict, NotFound, PluginContext, ValidationFailed, require_user
from fittracker.http import json_response, no_content, read_model
from fittracker.openapi import BEARER, operation, schemas
from fittracker.openapi import json_response as json_doc

NO_DEVICE = "no device with this id"


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="fcm | apns | webhook, or a platform a push-provider plug-in adds",
    )
    token: str = Field(
        min_length=1,
        max_length=4096,
        description="FCM registration token; APNs hex device token; webhook: an https URL "
        "(http only for loopback hosts)",
    )
    name: str | None = Field(default=None, min_length=1, max_length=100, description='e.g. "Pixel 8"')


class DeviceOut(BaseModel):
    id: str
    platform: str
    token: str
    name: str | None
    active: bool = Field(
        description="false once the provider reported the token invalid; re-register to revive"
    )
    created_at: str
    updated_at: str


class DeviceList(BaseModel):
    items: list[DeviceOut]


@dataclass(slots=True)
class DevicesArea:
    ctx: PluginContext
    store: DeviceStore
    # Platforms known when no Dispatcher sits on the app (filled at start-up).
    fallback_platforms: frozenset[str] = field(default_factory=frozenset)

    def platforms(self, app: web.Application) -> frozenset[str]:
        dispatcher = app.get(DISPATCHER)
        extra = dispatcher.platforms if dispatcher is not None else self.fallback_platforms
        return frozenset(BUILTIN_PLATFORMS) | extra


DEVICES = web.AppKey("fittracker_plugins.notifications.devices", DevicesArea)


def _area(request: web.Request) -> DevicesArea:
    return request.app[DEVICES]


async def register_device(request: web.Request) -> web.Response:
    principal = require_user(request)
    area = _area(request)
    body = await read_model(request, DeviceCreate)
    platforms = area.platforms(request.app)
    if body.platform not in platforms:
        known = ", ".join(sorted(platforms))
        raise ValidationFailed(
            "unknown platform",
            errors=[
                {
                    "field": "platform",
                    "message": f"no push provider serves {body.platform!r}; use one of {known}",
                }
            ],
        )
    try:
        token = check_token(body.platform, body.token)
    except DeviceError as exc:
        raise ValidationFailed(
            "invalid device token", errors=[{"field": "token", "message": str(exc)}]
        ) from None
    limit = int(area.ctx.settings["max_devices_per_user"])
    already_mine = await area.store.owned(principal.user_id, body.platform, token)
    if not already_mine and await area.store.count_active(principal.user_id) >= limit:
        raise Conflict(f"you already have {limit} active devices, the most allowed; delete one first")
    device = await area.store.register(principal.user_id, body.platform, token, body.name)
    return json_response(public(device), status=201)


async def list_devices(request: web.Request) -> web.Response:
    principal = require_user(request)
    devices = await _area(request).store.list_for(principal.user_id)
    return json_response({"items": [public(d) for d in devices]})


async def delete_device(request: web.Request) -> web.Response:
    principal = require_user(request)
    if not await _area(request).store.delete(principal.user_id, request.match_info["device_id"]):
        raise NotFound(NO_DEVICE)
    return no_content()


def setup(app: web.Application, ctx: PluginContext) -> None:
    """Register the devices routes; the store's indexes are made at start-up."""
    area = DevicesArea(ctx=ctx, store=DeviceStore(ctx.db))
    app[DEVICES] = area

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await area.store.start()
        if DISPATCHER not in _app:
            # Learn which platforms plug-ins add, without keeping their providers open.
            providers = hook_providers(ctx)
            area.fallback_platforms = frozenset(p.platform for p in providers)
            for provider in providers:
                await provider.close()
        yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/v1/notifications/devices", register_device)
    app.router.add_get("/api/v1/notifications/devices", list_devices)
    app.router.add_delete("/api/v1/notifications/devices/{device_id}", delete_device)


# --- OpenAPI -----------------------------------------------------------------------------------

TAG = "notifications"
DEVICE_ID: dict[str, Any] = {
    "name": "device_id",
    "in": "path",
    "required": True,
    "description": "a device id from the list",
    "schema": {"type": "string"},
}


def openapi() -> dict[str, Any]:
    """This area's paths and schemas."""
    paths = {
        "/api/v1/notifications/devices": {
            "post": operation(
                "notifications_register_device",
                "Register a push device",
                TAG,
                {
                    "201": json_doc(
                        "The device (the same one again when the token was registered before)", DeviceOut
                    )
                },
                errors=(400, 401, 409, 413, 415, 422),
                body=DeviceCreate,
                security=BEARER,
                description="Idempotent per (platform, token): registering a known token again "
                "reactivates it, and a token registered by another user moves to the caller (a "
                "token is one installation). At most `max_devices_per_user` (setting) active devices; "
                "past that, 409. A device whose provider reports its token invalid turns `active: false`.",
            ),
            "get": operation(
                "notifications_list_devices",
                "Your push devices",
                TAG,
                {"200": json_doc("Every device of the caller, oldest first", DeviceList)},
                errors=(401,),
                security=BEARER,
            ),
        },
        "/api/v1/notifications/devices/{device_id}": {
            "delete": operation(
                "notifications_delete_device",
                "Remove a push device",
                TAG,
                {"204": {"description": "Deleted; nothing more is pushed to it"}},
                errors=(401, 404),
                parameters=[DEVICE_ID],
                security=BEARER,
                description="Another user's device is a 404.",
            ),
        },
    }
    return {"paths": paths, "schemas": {**schemas(DeviceCreate), **schemas(DeviceList, mode="serialization")}}
