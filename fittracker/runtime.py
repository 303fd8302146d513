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
    from fittracker.split import Split


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
    contexts: dict[str, PluginContext] = field(default_factory=dict)  # plug-ins served here
    split: Split | None = None  # plug-ins served by workers or remote hosts (split mode)


RUNTIME = web.AppKey("fittracker.runtime", Runtime)
