"""Helpers of the delivery, push, email and devices tests.

``DeliveryProbe`` is a stand-in plug-in that owns ``/api/v1/notifications`` and mounts only
the devices area, with the delivery settings in its own section (``delivery_probe``). Tests
then build their own :class:`Dispatcher` on its real context (real SQLite database, real hook
relay), with a controllable clock, and drive the sender loop one round at a time.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from fittracker_plugins.notifications import routes_devices
from fittracker_plugins.notifications.delivery_policy import DELIVERY_DEFAULTS

from fittracker import PluginContext, PluginInfo, hookimpl
from fittracker.push import Device, Outcome, PushMessage, PushResult
from fittracker.runtime import RUNTIME
from tests.users.conftest import FAST_HASHING

PROBE = "delivery_probe"


class DeliveryProbe:
    """The devices area plus the delivery settings, without a sender of its own."""

    @hookimpl
    def fittracker_plugin_info(self) -> PluginInfo:
        return PluginInfo(name=PROBE, version="1.0", prefixes=("/api/v1/notifications",))

    @hookimpl
    def fittracker_config_defaults(self) -> Mapping[str, Any]:
        return DELIVERY_DEFAULTS

    @hookimpl
    def fittracker_setup(self, app: web.Application, ctx: PluginContext) -> None:
        routes_devices.setup(app, ctx)

    @hookimpl
    def fittracker_openapi(self, ctx: PluginContext) -> Mapping[str, Any]:
        part = routes_devices.openapi()
        return {"paths": part["paths"], "components": {"schemas": part["schemas"]}, "tags": []}


@dataclass
class PigeonProvider:
    """A push provider for platform ``pigeon``: records sends, answers from a script."""

    platform: str = "pigeon"
    script: list[Outcome] = field(default_factory=list)
    sent: list[tuple[Device, PushMessage]] = field(default_factory=list)
    closed: bool = False
    delay_s: float = 0.0

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.sent.append((device, message))
        outcome: Outcome = self.script.pop(0) if self.script else "sent"
        return PushResult(
            outcome, f"pigeon says {outcome}", provider_id="coo-1" if outcome == "sent" else None
        )

    async def close(self) -> None:
        self.closed = True


class PigeonPlugin:
    """A third-party plug-in adding the ``pigeon`` platform through the hook."""

    def __init__(self) -> None:
        self.provider = PigeonProvider()

    @hookimpl
    def fittracker_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="pigeons", version="1.0")

    @hookimpl
    def fittracker_push_providers(self, ctx: PluginContext) -> list[PigeonProvider]:
        return [self.provider]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def probe_config(**settings: Any) -> dict[str, dict[str, Any]]:
    return {"users": dict(FAST_HASHING), PROBE: settings}


def probe_context(client: TestClient[Any, Any]) -> PluginContext:
    ctx: PluginContext = client.app[RUNTIME].contexts[PROBE]
    return ctx


def notification(user_id: str, nid: str = "n1", **extra: Any) -> dict[str, Any]:
    base = {
        "id": nid,
        "user_id": user_id,
        "category": "achievements",
        "type": "achievement.record",
        "title": "New record",
        "body": "Bench press: 100 kg",
        "data": {"exercise_id": "Bench_Press", "weight_kg": 100},
        "created_at": "2030-01-01T12:00:00.000+00:00",
    }
    return {**base, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
