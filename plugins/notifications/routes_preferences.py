"""``/api/v1/notifications/preferences``: channels per category, quiet hours and time zone."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from fittracker_plugins.notifications.models import Preferences, PreferencesUpdate
from fittracker_plugins.notifications.prefs import DEFAULTS
from fittracker_plugins.notifications.state import notifications_of

from fittracker import PluginContext, require_user
from fittracker.http import json_response, read_model
from fittracker.openapi import BEARER, operation, schemas
from fittracker.openapi import json_response as doc_response

PATH = "/api/v1/notifications/preferences"
TAG = "notifications"


async def get_preferences(request: web.Request) -> web.Response:
    user = require_user(request)
    prefs = await notifications_of(request).prefs.effective(user.user_id)
    return json_response(prefs.public())


async def put_preferences(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await read_model(request, PreferencesUpdate)
    prefs = await notifications_of(request).prefs.update(user.user_id, body)
    return json_response(prefs.public())


def setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_get(PATH, get_preferences)
    app.router.add_put(PATH, put_preferences)


def _defaults() -> str:
    return "; ".join(
        f"{name}: " + ", ".join(channel for channel, on in switches.items() if on)
        for name, switches in DEFAULTS.items()
    )


def openapi() -> dict[str, Any]:
    prefs = doc_response("Your preferences, defaults applied", Preferences)
    paths = {
        PATH: {
            "get": operation(
                "notifications_get_preferences",
                "Your notification preferences",
                "notifications",
                {"200": prefs},
                errors=(401,),
                security=BEARER,
                description=f"Defaults (channels on): {_defaults()}. The time zone is the one set here, "
                "else your profile's, else UTC.",
            ),
            "put": operation(
                "notifications_put_preferences",
                "Change your notification preferences",
                "notifications",
                {"200": prefs},
                errors=(400, 401, 413, 415, 422),
                body=PreferencesUpdate,
                security=BEARER,
                description='Fields left out keep their value, so `{"categories": {"social": {"push": '
                "false}}}` changes one switch. During quiet hours (`HH:MM`, local time, may wrap "
                "midnight) push and email are deferred to the end of the window, never dropped; "
                "in-app notifications are unaffected. `quiet_hours: null` turns them off.",
            ),
        }
    }
    return {"paths": paths, "schemas": schemas(PreferencesUpdate, Preferences)}
