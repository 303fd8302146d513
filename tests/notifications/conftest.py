"""Shared fixtures of the notifications tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications.delivery import Dispatcher

from tests.conftest import MakeClient
from tests.notifications.delivery_helpers import (
    PROBE,
    DeliveryProbe,
    FakeClock,
    PigeonPlugin,
    probe_config,
    probe_context,
)
from tests.notifications.live_helpers import LIVE_PLUGINS, live_config

# --- delivery pipeline, push, email and devices (test_delivery*, test_push*, test_email*,
# test_devices*): a stand-in plug-in with the devices area, and Dispatchers built by the test.


@pytest.fixture
def delivery_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pigeons() -> PigeonPlugin:
    return PigeonPlugin()


MakeDeliveryClient = Callable[..., Awaitable[TestClient[Any, Any]]]
MakeDispatcher = Callable[[TestClient[Any, Any]], Awaitable[Dispatcher]]


@pytest.fixture
def make_delivery_client(make_client: MakeClient, pigeons: PigeonPlugin) -> MakeDeliveryClient:
    """``await make_delivery_client(webhook_secret=...)``: users + the probe + pigeons."""

    async def factory(**settings: Any) -> TestClient[Any, Any]:
        return await make_client(
            plugins=["users", PROBE, "pigeons"],
            config=probe_config(**{"delivery_backoff_base_s": 10.0, **settings}),
            extra=[DeliveryProbe(), pigeons],
        )

    return factory


@pytest.fixture
async def make_dispatcher(delivery_clock: FakeClock) -> AsyncIterator[MakeDispatcher]:
    """Dispatchers on the probe's context, started without their loop (tests run rounds)."""
    made: list[Dispatcher] = []

    async def factory(client: TestClient[Any, Any]) -> Dispatcher:
        dispatcher = Dispatcher(probe_context(client), clock=delivery_clock, rng=random.Random(7))
        await dispatcher.start(run=False)
        made.append(dispatcher)
        return dispatcher

    yield factory
    for dispatcher in made:
        await dispatcher.close()


# --- live stream, inbox, preferences and event rules (test_ws*, test_inbox*, test_preferences*,
# test_rules*): the whole app (users + workouts + notifications); see live_helpers.


@pytest.fixture
async def live_client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client(plugins=LIVE_PLUGINS, config=live_config())
