"""``/api/v1/notifications/bulk`` (admins): create, follow, list and cancel bulk sends.

The work itself happens in :mod:`.bulk`; this area validates requests, stores jobs and wakes
this process's runner so a new job starts at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aiohttp import web
from fittracker_plugins.notifications.bulk import BulkJobs, BulkRunner, public_job
from fittracker_plugins.notifications.models import Category, Data
from fittracker_plugins.notifications.state import NOTIFICATIONS
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from fittracker import Conflict, NotFound, PluginContext, require_admin
from fittracker.http import json_response, read_model, read_query
from fittracker.http.pagination import after_cursor, encode_cursor
from fittracker.openapi import ADMIN, operation, query_parameters, schemas
from fittracker.openapi import json_response as json_doc

BASE = "/api/v1/notifications/bulk"
TAG = "notifications"
MAX_IDS = 10_000
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Audience(BaseModel):
    """Exactly one of ``all: true``, ``followers_of`` or ``user_ids``."""

    model_config = ConfigDict(extra="forbid")

    all: Literal[True] | None = Field(default=None, description="every user the plug-in knows")
    followers_of: UserId | None = Field(default=None, description="the followers of this user")
    user_ids: list[UserId] | None = Field(
        default=None, min_length=1, max_length=MAX_IDS, description="these users (duplicates count once)"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Audience:
        given = [name for name in ("all", "followers_of", "user_ids") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of all: true, followers_of or user_ids")
        return self


class BulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audience: Audience
    category: Category
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=2000)
    data: Data | None = Field(default=None, description="attached to every notification")
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200, description="the same key returns the first job"
    )


class BulkAudienceOut(BaseModel):
    kind: Literal["all", "followers_of", "user_ids"]
    user_id: str | None = Field(default=None, description="followers_of: whose followers")
    count: int | None = Field(default=None, description="user_ids: how many distinct ids")


class BulkJobOut(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "cancelled", "failed"]
    audience: BulkAudienceOut
    category: Category
    title: str
    total: int | None = Field(description="recipients; null until the job has counted them")
    sent: int = Field(description="notified (the notification exists, on at least one channel)")
    failed: int = Field(description="notify raised an error for these recipients")
    skipped: int = Field(description="recipients who turned every channel of this category off")
    created_by: str
    created_at: str
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="why a `failed` job stopped")


class BulkJobPage(BaseModel):
    items: list[BulkJobOut]
    next_cursor: str | None


class BulkListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=20, ge=1, le=100, description="jobs per page, newest first")


@dataclass(frozen=True, slots=True)
class BulkArea:
    store: BulkJobs
    runner: BulkRunner


BULK = web.AppKey("fittracker_plugins.notifications.bulk", BulkArea)


async def create_job(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await read_model(request, BulkCreate)
    area = request.app[BULK]
    job, _new = await area.store.create(admin.user_id, body.model_dump(exclude_none=True))
    area.runner.kick()
    return json_response(public_job(job), status=202, headers={"Location": f"{BASE}/{job['_id']}"})


async def get_job(request: web.Request) -> web.Response:
    require_admin(request)
    job = await request.app[BULK].store.get(request.match_info["job_id"])
    if job is None:
        raise NotFound("no bulk job with this id")
    return json_response(public_job(job))


async def list_jobs(request: web.Request) -> web.Response:
    require_admin(request)
    query = read_query(request, BulkListQuery)
    after = after_cursor("created_at", "_id", query.cursor, descending=True)
    docs = await request.app[BULK].store.page(after, query.limit + 1)
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    cursor = encode_cursor(docs[-1]["created_at"], docs[-1]["_id"]) if more and docs else None
    return json_response({"items": [public_job(d) for d in docs], "next_cursor": cursor})


async def cancel_job(request: web.Request) -> web.Response:
    require_admin(request)
    store = request.app[BULK].store
    job_id = request.match_info["job_id"]
    job = await store.cancel(job_id)
    if job is None:
        earlier = await store.get(job_id)
        if earlier is None:
            raise NotFound("no bulk job with this id")
        if earlier["state"] != "cancelled":
            raise Conflict(f"the job is already {earlier['state']}")
        job = earlier  # cancelling twice is fine
    return json_response(public_job(job))


def setup(app: web.Application, ctx: PluginContext) -> None:
    store = BulkJobs(ctx)
    runner = BulkRunner(ctx, store, app[NOTIFICATIONS].notifier)
    app[BULK] = BulkArea(store, runner)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await store.create_indexes()
        runner.start()  # its first look resumes jobs a stopped process left running
        yield
        await runner.stop()

    async def stop(_app: web.Application) -> None:
        await runner.stop()  # before ctx.jobs closes: running jobs end after their batch

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(stop)
    app.router.add_post(BASE, create_job)
    app.router.add_get(BASE, list_jobs)
    app.router.add_get(BASE + "/{job_id}", get_job)
    app.router.add_post(BASE + "/{job_id}/cancel", cancel_job)


JOB_ID: dict[str, Any] = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "a bulk job id",
    "schema": {"type": "string"},
}


def openapi() -> dict[str, Any]:
    job = json_doc("The job and its progress", BulkJobOut)
    paths = {
        BASE: {
            "post": operation(
                "notifications_bulk_create",
                "Send a notification to many users (admin)",
                TAG,
                {"202": json_doc("Queued; follow its progress at the Location", BulkJobOut)},
                errors=(400, 401, 403, 413, 415, 422),
                body=BulkCreate,
                security=ADMIN,
                description="Runs in the background in batches of `bulk_batch_size`, at most "
                "`bulk_concurrency` sends at a time, resuming after a restart without notifying anyone "
                "twice. `total` is null until the recipients are counted. The same `idempotency_key` "
                "returns the first job instead of creating another.",
            ),
            "get": operation(
                "notifications_bulk_list",
                "Bulk jobs, newest first (admin)",
                TAG,
                {"200": json_doc("A page of jobs", BulkJobPage)},
                errors=(401, 403, 422),
                parameters=query_parameters(BulkListQuery),
                security=ADMIN,
            ),
        },
        BASE + "/{job_id}": {
            "get": operation(
                "notifications_bulk_get",
                "A bulk job's progress (admin)",
                TAG,
                {"200": job},
                errors=(401, 403, 404),
                parameters=[JOB_ID],
                security=ADMIN,
            )
        },
        BASE + "/{job_id}/cancel": {
            "post": operation(
                "notifications_bulk_cancel",
                "Cancel a bulk job (admin)",
                TAG,
                {"200": json_doc("The job, cancelled (sends stop after the current batch)", BulkJobOut)},
                errors=(401, 403, 404, 409),
                parameters=[JOB_ID],
                security=ADMIN,
                description="409 when the job has already finished; cancelling twice is fine.",
            )
        },
    }
    components = {**schemas(BulkCreate), **schemas(BulkJobOut, BulkJobPage, mode="serialization")}
    return {"paths": paths, "schemas": components}
