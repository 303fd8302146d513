"""The upstreams of one plug-in, as the router sees them: who is ready, busy, ejected.

The supervisor (local workers) or the config (remote upstreams) adds and removes upstreams;
the balancer picks among the ready ones; the health prober ejects and re-admits them. This
module is the one place that state lives, so ``/health/services`` can show it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["starting", "ready", "ejected", "draining", "stopped"]


@dataclass(slots=True)
class Upstream:
    """One worker process or remote server that serves a plug-in.

    ``url`` is ``http://host:port`` for TCP upstreams, or ``unix:///path/to.sock`` for
    local workers on Unix sockets.
    """

    id: str
    plugin: str
    url: str
    kind: Literal["process", "remote"] = "process"
    state: State = "starting"
    pid: int | None = None
    restarts: int = 0
    started_at: float = field(default_factory=time.time)
    in_flight: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None

    @property
    def is_unix(self) -> bool:
        return self.url.startswith("unix://")

    @property
    def socket_path(self) -> str:
        return self.url[len("unix://") :]

    @property
    def base_url(self) -> str:
        """The base URL for HTTP requests (a dummy host for Unix sockets)."""
        return "http://worker" if self.is_unix else self.url.rstrip("/")

    def fail(self, error: str) -> None:
        self.consecutive_failures += 1
        self.last_error, self.last_error_at = error, time.time()

    def succeed(self) -> None:
        self.consecutive_failures = 0

    def describe(self) -> dict[str, Any]:
        """What ``/health/services`` shows for this upstream."""
        return {
            "id": self.id,
            "kind": self.kind,
            "url": self.url,
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "uptime_s": round(time.time() - self.started_at, 1),
            "in_flight": self.in_flight,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
        }


class UpstreamPool:
    """The upstreams of one plug-in."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self._upstreams: dict[str, Upstream] = {}

    def add(self, upstream: Upstream) -> None:
        self._upstreams[upstream.id] = upstream

    def remove(self, upstream_id: str) -> Upstream | None:
        return self._upstreams.pop(upstream_id, None)

    def get(self, upstream_id: str) -> Upstream | None:
        return self._upstreams.get(upstream_id)

    def all(self) -> list[Upstream]:
        return list(self._upstreams.values())

    def ready(self) -> list[Upstream]:
        return [u for u in self._upstreams.values() if u.state == "ready"]

    def describe(self) -> list[dict[str, Any]]:
        return [u.describe() for u in self._upstreams.values()]
