"""Helpers of the live-stream, inbox, preferences and rules tests (test_ws*, test_inbox*,
test_preferences*, test_rules*): a full app with the notifications plug-in, users who sign in,
and a WebSocket reader that waits for the message it expects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications.state import NOTIFICATIONS, Notifications

from tests.helpers import auth, register

WS = "/api/v1/notifications/ws"
INBOX = "/api/v1/notifications"
BENCH = "Barbell_Bench_Press_-_Medium_Grip"
FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
LIVE_PLUGINS = ["users", "workouts", "notifications"]


def live_config(**notifications: Any) -> dict[str, dict[str, Any]]:
    return {"users": dict(FAST_HASHING), "notifications": {"auth_check_interval_s": 0.1, **notifications}}


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


async def member(client: TestClient[Any, Any], name: str = "Member") -> Member:
    body = await register(client, name=name)
    return Member(body["user"]["id"], body["access_token"])


def state_of(client: TestClient[Any, Any]) -> Notifications:
    """The plug-in's shared services, from its sub-application."""
    subapps: list[web.Application] = client.app._subapps
    return next(sub[NOTIFICATIONS] for sub in subapps if NOTIFICATIONS in sub)


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, f"expected a text message, got {msg.type} {msg.data!r} {msg.extra!r}"
    data: dict[str, Any] = msg.json()
    return data


async def wait_for(
    ws: aiohttp.ClientWebSocketResponse, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """The first message that matches, skipping others (e.g. progress while waiting for a record)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await receive(ws, max(0.01, deadline - loop.time()))
        if match(message):
            return message


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> int | None:
    """Read until the server closes; returns its close code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - loop.time()))
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code if msg.type != WSMsgType.CLOSE else int(msg.data)


def of_type(type_: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    def match(message: dict[str, Any]) -> bool:
        return message["type"] == type_ and all(message["data"].get(k) == v for k, v in data.items())

    return match


async def log_set(client: TestClient[Any, Any], who: Member, reps: int = 5, weight_kg: float = 100) -> str:
    """Start a workout and log one set (a first set of an exercise is a record)."""
    resp = await client.post("/api/v1/workouts", headers=who.headers, json={"name": "Push"})
    assert resp.status == 201, await resp.text()
    workout_id: str = (await resp.json())["id"]
    body = {"exercise_id": BENCH, "reps": reps, "weight_kg": weight_kg}
    resp = await client.post(f"/api/v1/workouts/{workout_id}/sets", headers=who.headers, json=body)
    assert resp.status == 201, await resp.text()
    return workout_id
