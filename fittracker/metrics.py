"""Prometheus metrics, on a registry owned by the application (no global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The core's metrics; plug-ins may register more on ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fittracker_http_requests",
            "HTTP requests served",
            ["plugin", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fittracker_http_request_duration_seconds",
            "HTTP request latency",
            ["plugin", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "fittracker_http_requests_in_flight", "HTTP requests in progress", registry=self.registry
        )
        self.events_published = Counter(
            "fittracker_events_published", "Events published to the bus", ["type"], registry=self.registry
        )
        self.events_handled = Counter(
            "fittracker_events_handled",
            "Events handled by consumer groups",
            ["group", "type", "outcome"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "fittracker_rate_limited",
            "Requests refused by the rate limiter",
            ["scope"],
            registry=self.registry,
        )

    # BusMetrics protocol -------------------------------------------------------------------
    def published(self, event_type: str) -> None:
        self.events_published.labels(type=event_type).inc()

    def handled(self, group: str, event_type: str, outcome: str) -> None:
        self.events_handled.labels(group=group, type=event_type, outcome=outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
