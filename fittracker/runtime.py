"""Process-wide services shared by every plug-in of one process, hung off the main app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from fittracker.auth import Auth
from fittracker.bus import EventBus
from fittracker.cache import Cache
from fittracker.config import Settings
from fittracker.http.ratelimit import RateLimiter
from fittracker.http.security import ClientAddress
from fittracker.metrics import Metrics
from fittracker.services import ServiceClient

if TYPE_CHECKING:
    from fittracker.context import PluginContext


@dataclass(slots=True)
class Runtime:
    settings: Settings
    metrics: Metrics
    auth: Auth
    bus: EventBus
    services: ServiceClient
    client_address: ClientAddress
    limiter: RateLimiter | None
    cache: Cache
    mode: str = "inprocess"
    contexts: dict[str, PluginContext] = field(default_factory=dict)


RUNTIME = web.AppKey("fittracker.runtime", Runtime)
