"""What a plug-in is given: :class:`PluginContext`, and the typed keys to find it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fittracker.auth import Auth
from fittracker.bus import Event, EventBus
from fittracker.cache import Cache
from fittracker.config import Settings
from fittracker.metrics import Metrics
from fittracker.plugins import PluginInfo
from fittracker.services import ServiceClient
from fittracker.storage import Database

if TYPE_CHECKING:
    import aiojobs


@dataclass(slots=True)
class PluginContext:
    """Everything one plug-in may use. Built by the core, one per plug-in per process.

    ``db`` is the plug-in's own database; ``bus``, ``auth``, ``services``, ``metrics`` and
    ``cache`` (see :mod:`fittracker.cache`; prefix keys with the plug-in's name) are shared
    by every plug-in of the process. ``jobs`` exists from start-up until clean-up.
    """

    info: PluginInfo
    settings: Mapping[str, Any]
    config: Settings
    db: Database
    bus: EventBus
    auth: Auth
    services: ServiceClient
    metrics: Metrics
    log: logging.Logger
    cache: Cache
    hooks: Any = None  # pluggy's hook relay: call extension points, e.g. hooks.fittracker_push_providers
    _jobs: aiojobs.Scheduler | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def jobs(self) -> aiojobs.Scheduler:
        """The plug-in's background-job scheduler (closed gracefully on shutdown)."""
        if self._jobs is None:
            raise RuntimeError(f"{self.name}: ctx.jobs is available only between start-up and clean-up")
        return self._jobs

    async def publish(self, type: str, data: Mapping[str, Any], *, subject: str | None = None) -> None:
        """Publish an event with this plug-in as its source and the current request id."""
        from fittracker.log import current_request_id

        await self.bus.publish(
            type, data, source=f"fittracker/{self.name}", subject=subject, request_id=current_request_id()
        )

    async def follow(
        self,
        types: Collection[str],
        handle: Callable[[Event], None],
        *,
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        """Hand every event of ``types`` published from now on, by any process, to ``handle``.

        A broadcast read (every process sees every event; no consumer group), run as a
        background task until the bus closes. If the tail fails, the failure is logged,
        ``on_gap`` runs (events may be missed if the failure outlasts the log's retention),
        and the tail resumes from the last event seen: ``handle`` may see an event twice.
        """
        since = datetime.now(UTC)
        while True:
            try:
                async for event in self.bus.tail(types, since):
                    since = datetime.fromisoformat(event.time)
                    handle(event)
                return  # the bus closed
            except asyncio.CancelledError:
                raise
            except Exception:
                if on_gap is not None:
                    on_gap()
                self.log.exception("following %s failed; retrying", ", ".join(sorted(types)))
                await asyncio.sleep(1.0)


# The only app keys of the core. ``CONTEXT`` sits on each plug-in's sub-application.
CONTEXT = web.AppKey("fittracker.context", PluginContext)


def plugin_context(request: web.Request) -> PluginContext:
    """The context of the plug-in that owns the route being served."""
    return request.app[CONTEXT]
