"""``/api/v1/notifications/scheduled``: notifications sent at a given time (list, cancel).

Anyone may schedule for themselves; admins may schedule for any user and list everyone's
(``?all=true``). Firing is :mod:`.schedule`'s loop; the inactivity reminders of
:mod:`.reminders` show up here too (``kind: reminder``) and can be cancelled like the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from fittracker_plugins.notifications.delivery_policy import utcnow
from fittracker_plugins.notifications.models import Category, Data
from fittracker_plugins.notifications.reminders import Reminders
from fittracker_plugins.notifications.schedule import ScheduledStore, Scheduler, public_scheduled
from fittracker_plugins.notifications.state import NOTIFICATIONS
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fittracker import Conflict, Forbidden, NotFound, PluginContext, ValidationFailed, require_user
from fittracker.http import json_response, no_content, read_model, read_query
from fittracker.http.pagination import after_cursor, encode_cursor
from fittracker.openapi import BEARER, operation, query_parameters, schemas
from fittracker.openapi import json_response as json_doc

BASE = "/api/v1/notifications/scheduled"
TAG = "notifications"
MAX_AHEAD = timedelta(days=365)
NOT_FOUND = "no scheduled notification with this id"


class ScheduledCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="admins only (others: omit, or your own id)"
    )
    category: Category
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=2000)
    data: Data | None = None
    send_at: str = Field(
        description="ISO 8601 with a UTC offset, e.g. 2030-01-31T08:00:00+01:00; in the future, "
        "at most one year ahead"
    )

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date and time") from None
        if moment.tzinfo is None:
            raise ValueError("give a UTC offset (e.g. +00:00 or Z)")
        return value


class ScheduledOut(BaseModel):
    id: str
    user_id: str
    kind: Literal["send", "reminder"] = Field(description="`reminder`: the inactivity reminder")
    category: Category
    title: str
    body: str
    data: dict[str, Any]
    send_at: str
    state: Literal["pending", "firing", "sent", "cancelled"]
    created_by: str
    created_at: str
    sent_at: str | None
    notification_id: str | None = Field(description="the notification it became, once sent")


class ScheduledPage(BaseModel):
    items: list[ScheduledOut]
    next_cursor: str | None


class ScheduledQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: bool = Field(default=False, description="everyone's (admins only)")
    state: Literal["pending", "firing", "sent", "cancelled"] | None = Field(
        default=None, description="only this state"
    )
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=20, ge=1, le=100, description="items per page, soonest first")


@dataclass(frozen=True, slots=True)
class ScheduleArea:
    store: ScheduledStore
    scheduler: Scheduler
    reminders: Reminders


SCHEDULE = web.AppKey("fittracker_plugins.notifications.schedule", ScheduleArea)


async def create_scheduled(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await read_model(request, ScheduledCreate)
    target = body.user_id or user.user_id
    if target != user.user_id and not user.is_admin:
        raise Forbidden("only admins schedule notifications for other users")
    send_at = datetime.fromisoformat(body.send_at)
    now = utcnow()
    problem = "must be in the future" if send_at <= now else None
    if send_at > now + MAX_AHEAD:
        problem = "must be at most one year ahead"
    if problem:
        raise ValidationFailed("invalid send_at", errors=[{"field": "send_at", "message": problem}])
    area = request.app[SCHEDULE]
    doc = await area.store.add(
        user_id=target, created_by=user.user_id, category=body.category, title=body.title,
        body=body.body, data=body.data or {}, send_at=send_at,
    )  # fmt: skip
    area.scheduler.added(send_at)
    return json_response(public_scheduled(doc), status=201, headers={"Location": f"{BASE}/{doc['_id']}"})


async def list_scheduled(request: web.Request) -> web.Response:
    user = require_user(request)
    query = read_query(request, ScheduledQuery)
    if query.all and not user.is_admin:
        raise Forbidden("only admins list everyone's scheduled notifications")
    clauses: list[Any] = after_cursor("send_at", "_id", query.cursor, descending=False)
    if not query.all:
        clauses.append({"user_id": user.user_id})
    if query.state:
        clauses.append({"state": query.state})
    docs = await request.app[SCHEDULE].store.page({"$and": clauses} if clauses else {}, query.limit + 1)
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    cursor = encode_cursor(docs[-1]["send_at"], docs[-1]["_id"]) if more and docs else None
    return json_response({"items": [public_scheduled(d) for d in docs], "next_cursor": cursor})


async def cancel_scheduled(request: web.Request) -> web.Response:
    user = require_user(request)
    store = request.app[SCHEDULE].store
    doc = await store.get(request.match_info["scheduled_id"])
    if doc is None or (doc["user_id"] != user.user_id and not user.is_admin):
        raise NotFound(NOT_FOUND)
    if await store.cancel(doc["_id"]) is None:
        current = await store.get(doc["_id"])
        if current is not None and current["state"] != "cancelled":
            raise Conflict(f"it is already {current['state']}")
    return no_content()


def setup(app: web.Application, ctx: PluginContext) -> None:
    store = ScheduledStore(ctx)
    scheduler = Scheduler(ctx, store, app[NOTIFICATIONS].notifier)
    app[SCHEDULE] = ScheduleArea(store, scheduler, Reminders(ctx, store, scheduler.added))

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await store.create_indexes()
        scheduler.start()
        yield
        await scheduler.stop()

    async def stop(_app: web.Application) -> None:
        await scheduler.stop()  # before the bus closes: notify() publishes

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(stop)
    app.router.add_post(BASE, create_scheduled)
    app.router.add_get(BASE, list_scheduled)
    app.router.add_delete(BASE + "/{scheduled_id}", cancel_scheduled)


def openapi() -> dict[str, Any]:
    scheduled_id = {
        "name": "scheduled_id",
        "in": "path",
        "required": True,
        "description": "a scheduled notification's id; another user's is a 404 (admins: any)",
        "schema": {"type": "string"},
    }
    paths = {
        BASE: {
            "post": operation(
                "notifications_schedule",
                "Schedule a notification",
                TAG,
                {"201": json_doc("Scheduled", ScheduledOut)},
                errors=(400, 401, 403, 413, 415, 422),
                body=ScheduledCreate,
                security=BEARER,
                description="Fires within about a second of `send_at` (and at most once, whatever the "
                "number of workers); survives restarts. Without `user_id` it is for the caller.",
            ),
            "get": operation(
                "notifications_scheduled_list",
                "Your scheduled notifications, soonest first",
                TAG,
                {"200": json_doc("A page", ScheduledPage)},
                errors=(401, 403, 422),
                parameters=query_parameters(ScheduledQuery),
                security=BEARER,
                description="Includes your inactivity reminder (`kind: reminder`), which every "
                "completed workout moves to `reminder_after_days` after it.",
            ),
        },
        BASE + "/{scheduled_id}": {
            "delete": operation(
                "notifications_scheduled_cancel",
                "Cancel a scheduled notification",
                TAG,
                {"204": {"description": "Cancelled (cancelling twice is fine)"}},
                errors=(401, 404, 409),
                parameters=[scheduled_id],
                security=BEARER,
                description="409 once it has been sent (or is being sent).",
            )
        },
    }
    components = {**schemas(ScheduledCreate), **schemas(ScheduledOut, ScheduledPage, mode="serialization")}
    return {"paths": paths, "schemas": components}
