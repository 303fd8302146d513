"""Shared fixtures of the workouts tests.

Exercise library and routines: ``library_client`` (users + workouts + an event recorder for
``routine.rated``), ``routine_events``, ``signed_in`` (a registered user's id and headers) and
``open_library_db`` (the plug-in's SQLite database, reopened on each call, without an app).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fittracker import PluginContext, hookimpl
from fittracker.storage import Database, open_database
from tests.conftest import MakeClient
from tests.helpers import auth, register
from tests.users.conftest import FAST_HASHING, EventRecorder

LIBRARY_EVENTS = ("routine.rated",)


class LibraryEventRecorder(EventRecorder):
    """The users tests' recorder, subscribed to the routines events instead."""

    @hookimpl
    def fittracker_event_handlers(self, ctx: PluginContext) -> Mapping[str, Any]:
        return dict.fromkeys(LIBRARY_EVENTS, self._handle)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: str
    headers: dict[str, str]


def library_config(**workouts: Any) -> dict[str, dict[str, Any]]:
    """Fast password hashing, plus any workouts settings."""
    return {"users": dict(FAST_HASHING), "workouts": dict(workouts)}


async def signed_in(client: TestClient[Any, Any], name: str = "Lifter") -> SignedIn:
    """Register a user; returns its id and bearer headers."""
    body = await register(client, name=name)
    return SignedIn(user_id=body["user"]["id"], headers=auth(body["access_token"]))


@pytest.fixture
def routine_events() -> LibraryEventRecorder:
    return LibraryEventRecorder()


@pytest.fixture
async def library_client(
    make_client: MakeClient, routine_events: LibraryEventRecorder
) -> TestClient[Any, Any]:
    """Users + workouts (+ the event recorder), fast hashing, fresh data."""
    return await make_client(
        plugins=["users", "workouts", "recorder"], config=library_config(), extra=[routine_events]
    )


OpenLibraryDb = Callable[[], Database]


@pytest.fixture
async def open_library_db(tmp_path: Path) -> AsyncIterator[OpenLibraryDb]:
    """A factory opening the SAME SQLite ``workouts`` database on each call (a restart)."""
    opened: list[Database] = []

    def factory() -> Database:
        db = open_database("sqlite", "workouts", data_dir=tmp_path / "library")
        opened.append(db)
        return db

    yield factory
    for db in opened:
        await db.close()


# --- workout logging, records and progress (test_workouts, test_records, test_progress) --------

LOGBOOK_EVENTS = (
    "workout.started",
    "workout.set_logged",
    "workout.set_updated",
    "workout.set_deleted",
    "workout.updated",
    "workout.completed",
    "workout.discarded",
    "workout.deleted",
    "record.achieved",
)


class LogbookEventRecorder(EventRecorder):
    """The users tests' recorder, subscribed to the workout and record events."""

    @hookimpl
    def fittracker_event_handlers(self, ctx: PluginContext) -> Mapping[str, Any]:
        return dict.fromkeys(LOGBOOK_EVENTS, self._handle)


@pytest.fixture
def logbook_events() -> LogbookEventRecorder:
    return LogbookEventRecorder()


@pytest.fixture
async def logbook_client(
    make_client: MakeClient, logbook_events: LogbookEventRecorder
) -> TestClient[Any, Any]:
    """Users + workouts (+ the workout event recorder), fast hashing, fresh data."""
    return await make_client(
        plugins=["users", "workouts", "recorder"], config=library_config(), extra=[logbook_events]
    )
