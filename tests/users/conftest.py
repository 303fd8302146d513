"""Fixtures for the users plug-in: a users-only app with fast hashing, and an event recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fittracker import Event, PluginContext, PluginInfo, hookimpl
from tests.conftest import MakeClient

# argon2id with cheap parameters: the tests exercise behaviour, not hashing cost.
FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}

EVENT_TYPES = ("user.registered", "user.followed", "user.unfollowed", "profile.updated")


class EventRecorder:
    """A test plug-in that subscribes to the users plug-in's events and keeps them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def fittracker_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="recorder", version="0", description="records events for tests")

    @hookimpl
    def fittracker_event_handlers(self, ctx: PluginContext) -> Mapping[str, Any]:
        return dict.fromkeys(EVENT_TYPES, self._handle)

    async def _handle(self, event: Event) -> None:
        if all(e.id != event.id for e in self.events):  # at-least-once: dedupe by id
            self.events.append(event)

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]

    async def wait_for(
        self, type_: str, match: Callable[[Event], bool] = lambda e: True, timeout: float = 5.0
    ) -> Event:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for event in self.of_type(type_):
                if match(event):
                    return event
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {type_} event arrived; got {[e.type for e in self.events]}")


def users_config(**users: Any) -> dict[str, dict[str, Any]]:
    return {"users": {**FAST_HASHING, **users}}


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
async def users_client(make_client: MakeClient, recorder: EventRecorder) -> TestClient[Any, Any]:
    """Only the users plug-in (plus the event recorder), fast hashing, no rate limits."""
    return await make_client(plugins=["users", "recorder"], config=users_config(), extra=[recorder])
