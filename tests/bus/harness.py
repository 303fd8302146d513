"""One harness per event-bus backend, so the conformance suite can run against each.

A harness builds buses (each one stands in for a process) with short intervals, describes
them to subprocesses (crash tests), and looks inside the backend the way an operator would:
pending entries, dead letters, and a consumer that claims events and then dies.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import redis.asyncio as aioredis

from fittracker.bus import RedisEventBus, SqliteEventBus
from fittracker.bus.sqlite_log import SqliteLog, types_param

from .helpers import query, stream_entries

AnyBus = SqliteEventBus | RedisEventBus
MakeBus = Callable[..., AnyBus]

# Short intervals common to every backend; tests that need other values override them.
COMMON_FAST: dict[str, Any] = {"visibility_timeout": 0.3, "close_timeout": 2.0}


class BusHarness(ABC):
    name: ClassVar[str]
    # Backend-specific short intervals (merged over COMMON_FAST).
    fast: ClassVar[dict[str, Any]]

    def __init__(self) -> None:
        self._buses: list[AnyBus] = []

    def make(self, **options: Any) -> AnyBus:
        """A new bus; closed at the end of the test."""
        bus = self._build({**COMMON_FAST, **self.fast, **options})
        self._buses.append(bus)
        return bus

    def spec(self, **options: Any) -> str:
        """JSON for a subprocess: ``open_bus(backend, data_dir=..., url=..., **options)``."""
        return json.dumps({"backend": self.name, **self._location(), "options": {**self.fast, **options}})

    async def close(self) -> None:
        for bus in self._buses:
            await bus.close()

    @abstractmethod
    def _build(self, options: dict[str, Any]) -> AnyBus: ...

    @abstractmethod
    def _location(self) -> dict[str, str | None]: ...

    @abstractmethod
    async def ghost_claim(self, group: str, event_type: str) -> list[str]:
        """Claim the group's new events as consumer "ghost", which then dies; their ids."""

    @abstractmethod
    async def pending(self, group: str) -> list[int]:
        """Delivery counts of the group's unacknowledged entries, in log order."""

    @abstractmethod
    async def dead_letters(self, group: str) -> list[tuple[str, int]]:
        """``(event id, deliveries)`` of the group's dead letters."""


class SqliteHarness(BusHarness):
    name = "sqlite"
    fast = {"poll_interval": 0.01}

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.data_dir = data_dir

    def _build(self, options: dict[str, Any]) -> AnyBus:
        return SqliteEventBus(self.data_dir, **options)

    def _location(self) -> dict[str, str | None]:
        return {"data_dir": str(self.data_dir), "url": None}

    async def ghost_claim(self, group: str, event_type: str) -> list[str]:
        ghost = SqliteLog(self.data_dir / "events.db")
        try:
            return [d.event.id for d in ghost.claim(group, types_param([event_type]), "ghost", 100)]
        finally:
            ghost.close()

    async def pending(self, group: str) -> list[int]:
        rows = query(self.data_dir, "SELECT deliveries FROM pending WHERE group_name = ? ORDER BY seq", group)
        return [row[0] for row in rows]

    async def dead_letters(self, group: str) -> list[tuple[str, int]]:
        rows = query(
            self.data_dir,
            "SELECT event_id, deliveries FROM dead_letters WHERE group_name = ? ORDER BY seq",
            group,
        )
        return [(row[0], row[1]) for row in rows]


class RedisHarness(BusHarness):
    name = "redis"
    fast = {"poll_block_ms": 20}

    def __init__(self, url: str, stream: str) -> None:
        super().__init__()
        self.url = url
        self.stream = stream
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)

    def _build(self, options: dict[str, Any]) -> AnyBus:
        return RedisEventBus(self.url, **{"stream": self.stream, **options})

    def _location(self) -> dict[str, str | None]:
        return {"data_dir": "/nonexistent", "url": self.url}

    def spec(self, **options: Any) -> str:
        return super().spec(stream=self.stream, **options)

    async def close(self) -> None:
        await super().close()
        await self.redis.delete(self.stream, f"{self.stream}:dead")
        await self.redis.aclose()

    async def ghost_claim(self, group: str, event_type: str) -> list[str]:
        await self.redis.xgroup_create(self.stream, group, id="0", mkstream=True)
        reply: Any = await self.redis.xreadgroup(group, "ghost", {self.stream: ">"}, count=100)
        entries = reply[0][1] if reply else []
        return [str(fields["id"]) for _, fields in entries if fields["type"] == event_type]

    async def pending(self, group: str) -> list[int]:
        rows = await self.redis.xpending_range(self.stream, group, min="-", max="+", count=1000)
        return [int(row["times_delivered"]) for row in rows]

    async def dead_letters(self, group: str) -> list[tuple[str, int]]:
        entries = await stream_entries(self.redis, f"{self.stream}:dead")
        return [(f["id"], int(f["deliveries"])) for _, f in entries if f["group"] == group]
