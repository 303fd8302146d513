"""A third-party plug-in used by the tests: installed through an entry point, like any other.

It proves the contract end to end: routes on its own sub-app, its own database, an event it
publishes and handles, a health check, OpenAPI paths, and a call through ``ctx.services``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from fittracker import (
    CliCommand,
    Event,
    PluginContext,
    PluginInfo,
    Setting,
    hookimpl,
    plugin_context,
    require_user,
)
from fittracker.hookspecs import HealthCheck
from fittracker.http import json_response, read_model
from fittracker.openapi import BEARER, json_body, problems, ref, schemas
from fittracker.push import Device, PushMessage, PushResult

PREFIX = "/api/v1/notes"


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=200)


class Note(BaseModel):
    id: str
    owner_id: str
    text: str
    words: int | None = None


@hookimpl
def fittracker_plugin_info() -> PluginInfo:
    return PluginInfo(name="notes", version="1.2.3", description="Test notes", prefixes=(PREFIX,))


@hookimpl
def fittracker_config_defaults() -> Mapping[str, Any]:
    return {"max_notes": Setting(100, "notes per user", min=1), "greeting": "hello"}


async def create_note(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    user = require_user(request)
    body = await read_model(request, NoteIn)
    if await ctx.db.collection("notes").count({"owner_id": user.user_id}) >= ctx.settings["max_notes"]:
        from fittracker import Conflict

        raise Conflict("too many notes")
    doc = await ctx.db.collection("notes").insert_one({"owner_id": user.user_id, "text": body.text})
    await ctx.publish("note.created", {"note_id": doc["_id"], "owner_id": user.user_id}, subject=doc["_id"])
    await ctx.jobs.spawn(count_words(ctx, doc["_id"], body.text))
    return json_response({"id": doc["_id"], "owner_id": user.user_id, "text": body.text}, status=201)


async def count_words(ctx: PluginContext, note_id: str, text: str) -> None:
    """Background work on the plug-in's job scheduler."""
    await ctx.db.collection("notes").update_one({"_id": note_id}, {"$set": {"words": len(text.split())}})


async def list_notes(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    user = require_user(request)
    docs = await ctx.db.collection("notes").find({"owner_id": user.user_id}, sort=[("_id", 1)])
    return json_response(
        {
            "items": [
                {"id": d["_id"], "owner_id": d["owner_id"], "text": d["text"], "words": d.get("words")}
                for d in docs
            ]
        }
    )


async def stats(request: web.Request) -> web.Response:
    ctx = plugin_context(request)
    doc = await ctx.db.collection("stats").find_one({"_id": "events"})
    return json_response({"handled": (doc or {}).get("count", 0), "greeting": ctx.settings["greeting"]})


async def core_health(request: web.Request) -> web.Response:
    """Calls the server's own /health through the internal service client."""
    ctx = plugin_context(request)
    resp = await ctx.services.get("/health")
    return json_response({"status": resp.status, "service": resp.body["service"]})


async def slow(request: web.Request) -> web.Response:
    """Takes a while: lets tests check that shutdown finishes in-flight requests."""
    import asyncio

    await asyncio.sleep(float(request.query.get("seconds", "1")))
    return json_response({"slept": True})


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals must not leak")


@hookimpl
def fittracker_setup(app: web.Application, ctx: PluginContext) -> None:
    app.router.add_post(PREFIX, create_note)
    app.router.add_get(PREFIX, list_notes)
    app.router.add_get(f"{PREFIX}/stats", stats)
    app.router.add_get(f"{PREFIX}/core-health", core_health)
    app.router.add_get(f"{PREFIX}/boom", boom)
    app.router.add_get(f"{PREFIX}/slow", slow)


@hookimpl
def fittracker_event_handlers(ctx: PluginContext) -> Mapping[str, Any]:
    async def on_note_created(event: Event) -> None:
        # Idempotent: remember handled event ids, count each once.
        seen = ctx.db.collection("seen")
        if await seen.find_one({"_id": event.id}) is not None:
            return
        await ctx.db.collection("stats").update_one({"_id": "events"}, {"$inc": {"count": 1}}, upsert=True)
        await seen.insert_one({"_id": event.id})

    return {"note.created": on_note_created}


@hookimpl
def fittracker_health(ctx: PluginContext) -> Mapping[str, HealthCheck]:
    async def notes_table() -> None:
        await ctx.db.collection("notes").count()

    return {"notes_table": notes_table}


class NoteBoardProvider:
    """A push provider that "delivers" by writing the message to the notes database."""

    platform = "noteboard"

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        if device.token == "gone":
            return PushResult("invalid_token", "no such board")
        await self.ctx.db.collection("board").insert_one({"to": device.token, "title": message.title})
        return PushResult("sent")

    async def close(self) -> None:
        return None


@hookimpl
def fittracker_push_providers(ctx: PluginContext) -> list[NoteBoardProvider]:
    return [NoteBoardProvider(ctx)]


@hookimpl
def fittracker_cli_commands() -> list[CliCommand]:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--owner", required=True)

    async def run(args: argparse.Namespace, ctx: PluginContext) -> int:
        print(await ctx.db.collection("notes").count({"owner_id": args.owner}))
        return 0

    return [CliCommand(words=("notes", "count"), help="count a user's notes", configure=configure, run=run)]


@hookimpl
def fittracker_openapi(ctx: PluginContext) -> Mapping[str, Any]:
    note_list = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": ref(Note)}},
    }
    return {
        "paths": {
            PREFIX: {
                "post": {
                    "summary": "Create a note",
                    "operationId": "createNote",
                    "tags": ["notes"],
                    "security": BEARER,
                    "requestBody": json_body(NoteIn),
                    "responses": {
                        "201": {
                            "description": "Created",
                            "content": {"application/json": {"schema": ref(Note)}},
                        },
                        **problems(400, 401, 409, 422),
                    },
                },
                "get": {
                    "summary": "My notes",
                    "operationId": "listNotes",
                    "tags": ["notes"],
                    "security": BEARER,
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": note_list}}},
                        **problems(401),
                    },
                },
            },
            f"{PREFIX}/stats": {
                "get": {
                    "summary": "Events handled",
                    "operationId": "noteStats",
                    "tags": ["notes"],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["handled", "greeting"],
                                        "properties": {
                                            "handled": {"type": "integer"},
                                            "greeting": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            f"{PREFIX}/core-health": {
                "get": {
                    "summary": "Server health via the internal client",
                    "operationId": "noteCoreHealth",
                    "tags": ["notes"],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            f"{PREFIX}/slow": {
                "get": {
                    "summary": "Sleeps",
                    "operationId": "noteSlow",
                    "tags": ["notes"],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            f"{PREFIX}/boom": {
                "get": {
                    "summary": "Always fails",
                    "operationId": "noteBoom",
                    "tags": ["notes"],
                    "responses": {
                        "500": {
                            "description": "Crash",
                            "content": {"application/problem+json": {"schema": ref("Problem")}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": schemas(NoteIn, Note)},
        "tags": [{"name": "notes", "description": "Test notes"}],
    }
