"""``/api/v1/notifications``: the inbox (list, unread count, mark one or all read)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from fittracker_plugins.notifications.models import (
    InboxQuery,
    MarkedRead,
    Notification,
    NotificationPage,
    UnreadCount,
    is_notification_id,
)
from fittracker_plugins.notifications.state import notifications_of

from fittracker import NotFound, PluginContext, require_user
from fittracker.http import json_response, read_query
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as doc_response

BASE = "/api/v1/notifications"
TAG = "notifications"


async def list_inbox(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, InboxQuery)
    page = await notifications_of(request).inbox.page(
        user.user_id, unread=query.unread, cursor=query.cursor, limit=query.limit
    )
    return json_response(page)


async def unread_count(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"count": await notifications_of(request).inbox.unread_count(user.user_id)})


async def mark_read(request: web.Request) -> web.Response:
    user = require_user(request)
    notification_id = request.match_info["notification_id"]
    if not is_notification_id(notification_id):
        raise NotFound("no notification with this id")
    return json_response(await notifications_of(request).inbox.mark_read(user.user_id, notification_id))


async def mark_all_read(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"updated": await notifications_of(request).inbox.mark_all_read(user.user_id)})


def setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_get(BASE, list_inbox)
    app.router.add_get(BASE + "/unread-count", unread_count)
    app.router.add_post(BASE + "/read-all", mark_all_read)
    app.router.add_post(BASE + "/{notification_id}/read", mark_read)


def _op(
    operation_id: str, summary: str, responses: dict[str, Any], errors: tuple[int, ...], **kw: Any
) -> dict[str, Any]:
    return operation(operation_id, summary, TAG, responses, errors=errors, security=BEARER, **kw)


def openapi() -> dict[str, Any]:
    notification_id = {
        "name": "notification_id",
        "in": "path",
        "required": True,
        "description": "a notification id; another user's notification is a 404",
        "schema": {"type": "string"},
    }
    read_note = (
        "The change is pushed live to the user's other connections as a `notification.read` stream "
        "message (`data: {ids, all, read_at}`)."
    )
    paths = {
        BASE: {
            "get": _op(
                "notifications_list",
                "Your notifications, newest first",
                {"200": doc_response("A page of the inbox", NotificationPage)},
                (401, 422),
                parameters=query_parameters(InboxQuery),
                description="Cursor pagination: pass `next_cursor` as `cursor` for older items. Keeps the "
                "latest `retain_per_user` stream entries per user, none older than `retain_days`.",
            )
        },
        BASE + "/unread-count": {
            "get": _op(
                "notifications_unread_count",
                "How many notifications are unread",
                {"200": doc_response("The unread count", UnreadCount)},
                (401,),
            )
        },
        BASE + "/{notification_id}/read": {
            "post": _op(
                "notifications_mark_read",
                "Mark one notification read",
                {"200": doc_response("The notification, read", Notification)},
                (401, 404),
                parameters=[notification_id],
                description="Marking a read notification again changes nothing. " + read_note,
            )
        },
        BASE + "/read-all": {
            "post": _op(
                "notifications_mark_all_read",
                "Mark every notification read",
                {"200": doc_response("How many changed", MarkedRead)},
                (401,),
                description=read_note + " With `all: true`, every item whose `stream_id` is below the "
                "message's `id` is read.",
            )
        },
    }
    components = schemas(NotificationPage, Notification, UnreadCount, MarkedRead, mode="serialization")
    tags = [{"name": TAG, "description": "Your inbox, live stream and notification preferences."}]
    return {"paths": paths, "schemas": components, "tags": tags}
