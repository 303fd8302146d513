"""The event-bus port: CloudEvents on a durable log, consumer groups, at-least-once delivery.

Two ways to receive events:

- ``subscribe(group, handlers)``: a *consumer group*. Every event of a subscribed type is
  handled by one consumer of the group, at least once: an event whose handler crashed (or
  whose process died) is delivered again. The bus skips events the group has already
  acknowledged, but a crash between "handled" and "acknowledged" re-delivers, so handlers
  must be idempotent (dedupe by ``event.id``). A consumer handles the events of one
  ``subject`` in log order and events of different subjects side by side, so publishers give
  events that must be handled in order the same subject (FitTracker's plug-ins use the user
  an event is about); with several consumers in a group (split mode), no order holds across
  them.
- ``tail(types, since)``: a *broadcast* read. Every caller sees every event from ``since``
  on; nothing is acknowledged. Used for process-local caches (e.g. revoked tokens).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from fittracker.ids import random_hex


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvents 1.0 envelope plus the request id that caused it."""

    type: str
    source: str
    data: dict[str, Any]
    subject: str | None = None
    request_id: str | None = None
    id: str = field(default_factory=lambda: random_hex())
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    specversion: str = "1.0"

    def to_dict(self) -> dict[str, Any]:
        return {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "subject": self.subject,
            "data": self.data,
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Event:
        return cls(
            type=raw["type"],
            source=raw["source"],
            data=dict(raw.get("data") or {}),
            subject=raw.get("subject"),
            request_id=raw.get("request_id"),
            id=raw["id"],
            time=raw["time"],
            specversion=raw.get("specversion", "1.0"),
        )


Handler = Callable[[Event], Awaitable[None]]


_Item = TypeVar("_Item")
_log = logging.getLogger("fittracker.bus")


async def run_handler(handler: Handler, event: Event, group: str, delivery: int, max_deliveries: int) -> bool:
    """Run a consumer group's handler; False, with the failure logged, if it raised (the
    event stays unacknowledged and is delivered again)."""
    try:
        await handler(event)
    except Exception:
        _log.exception(
            "event bus: group %r failed to handle %s %s (delivery %d of %d); will retry",
            group,
            event.type,
            event.id,
            delivery,
            max_deliveries,
            extra={"event_id": event.id, "request_id": event.request_id},
        )
        return False
    return True


async def in_subject_lanes(
    batch: Sequence[_Item],
    subject_of: Callable[[_Item], str],
    deliver: Callable[[list[_Item]], Awaitable[None]],
) -> None:
    """Deliver a claimed batch as concurrent lanes, one per subject, each lane in log order.

    Handlers wait on storage: one event at a time, a group handles no more events per second
    than its round trips allow, however idle the process. Events about one subject keep their
    order; those about different subjects may be handled in any order (as with several
    consumers in a group). Every lane finishes before the first error of any lane is raised.
    """
    lanes: dict[str, list[_Item]] = {}
    for item in batch:
        lanes.setdefault(subject_of(item), []).append(item)
    if len(lanes) <= 1:
        await deliver(list(batch))
        return
    outcomes = await asyncio.gather(*(deliver(lane) for lane in lanes.values()), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def require_positive(**options: float) -> None:
    """Backends' shared check of their numeric options."""
    for name, value in options.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


class BusMetrics(Protocol):
    """What the bus reports to ``/metrics``."""

    def published(self, event_type: str) -> None: ...

    def handled(self, group: str, event_type: str, outcome: str) -> None: ...


class EventBus(Protocol):
    """Publish/subscribe over a durable event log."""

    async def publish(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        source: str,
        subject: str | None = None,
        request_id: str | None = None,
    ) -> Event:
        """Append an event durably and return it; returns only once it is stored."""
        ...

    def subscribe(self, group: str, handlers: Mapping[str, Handler]) -> None:
        """Register a consumer group's handlers (by event type). Call before ``start``."""
        ...

    def tail(self, types: Collection[str], since: datetime) -> AsyncIterator[Event]:
        """Every event of ``types`` stored at or after ``since``, then live ones, forever."""
        ...

    async def start(self) -> None:
        """Begin delivering to subscribed groups."""
        ...

    async def ping(self) -> None:
        """Raise if the bus cannot accept events."""
        ...

    async def close(self) -> None:
        """Stop delivery (letting in-flight handlers finish) and release resources."""
        ...
