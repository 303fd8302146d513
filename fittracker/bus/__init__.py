"""The event bus: a port (:mod:`fittracker.bus.base`) and its backends.

``open_bus`` picks a backend by name: ``"sqlite"`` (a file in the data dir: one process, or
several on one host) or ``"redis"`` (Redis Streams: processes on many hosts). Every backend
gives the same guarantees: durable publish, consumer groups with at-least-once delivery and
redelivery of unacknowledged events, dead letters, and a broadcast ``tail``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fittracker.bus.base import BusMetrics, Event, EventBus, Handler
from fittracker.bus.sqlite import SqliteEventBus

if TYPE_CHECKING:
    from fittracker.bus.redis import RedisEventBus

__all__ = [
    "BACKENDS",
    "BusMetrics",
    "Event",
    "EventBus",
    "Handler",
    "RedisEventBus",
    "SqliteEventBus",
    "open_bus",
]

BACKENDS = ("sqlite", "redis")


def open_bus(
    backend: str,
    *,
    data_dir: Path,
    metrics: BusMetrics | None = None,
    consumer: str | None = None,
    url: str | None = None,
    **options: Any,
) -> EventBus:
    """Build (without starting) the event bus named by ``backend``.

    ``consumer`` names this process within its consumer groups (default: host, pid and a
    random suffix). ``url`` is the Redis URL, required for ``"redis"``, whose bus keeps what
    it publishes during a Redis outage in an outbox file in ``data_dir``. ``options`` go to
    the backend:

    - ``"sqlite"``: :class:`~fittracker.bus.sqlite.SqliteEventBus` (``poll_interval``,
      ``visibility_timeout``, ``max_deliveries``, ``batch_size``, ``close_timeout``,
      ``busy_timeout``);
    - ``"redis"``: :class:`~fittracker.bus.redis.RedisEventBus` (``stream``, ``maxlen``,
      ``poll_block_ms``, ``visibility_timeout``, ``max_deliveries``, ``batch_size``,
      ``close_timeout``).
    """
    if backend == "sqlite":
        return SqliteEventBus(data_dir, metrics=metrics, consumer=consumer, **options)
    if backend == "redis":
        if not url:
            raise ValueError("the redis event-bus backend needs url='redis://host:port/db'")
        from fittracker.bus.outbox import Outbox
        from fittracker.bus.redis import RedisEventBus  # redis is imported only when used

        return RedisEventBus(url, metrics=metrics, consumer=consumer, outbox=Outbox(data_dir), **options)
    raise ValueError(f"unknown event-bus backend {backend!r}; valid backends: {', '.join(BACKENDS)}")


def __getattr__(name: str) -> Any:
    # ``from fittracker.bus import RedisEventBus`` still works, without importing redis for
    # every process that never uses it.
    if name == "RedisEventBus":
        from fittracker.bus.redis import RedisEventBus

        return RedisEventBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
