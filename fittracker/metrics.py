"""Prometheus metrics, on a registry owned by the application (no global registry)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "RequestStats"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestStats(Collector):
    """Request counts, latency histograms and requests in flight, kept in plain dicts.

    Every request updates these, so they skip ``prometheus_client``'s per-call label lookup
    and locks (a third of the metrics' cost on ``/health``): one event-loop thread writes
    them, and a scrape reads them on the same thread.
    """

    def __init__(self, buckets: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self._bounds = buckets
        self._counts: dict[tuple[str, str, str, str], int] = {}  # plugin, method, route, status
        # (plugin, route) -> [count in each bucket (not cumulative) + the +Inf one, then the sum]
        self._latency: dict[tuple[str, str], list[float]] = {}
        self.in_flight = 0

    def finished(self, plugin: str, method: str, route: str, status: int, seconds: float) -> None:
        key = (plugin, method, route, str(status))
        self._counts[key] = self._counts.get(key, 0) + 1
        cells = self._latency.get((plugin, route))
        if cells is None:
            cells = self._latency[(plugin, route)] = [0.0] * (len(self._bounds) + 2)
        cells[bisect_left(self._bounds, seconds)] += 1  # le is inclusive, as Prometheus counts
        cells[-1] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "fittracker_http_requests", "HTTP requests served", labels=["plugin", "method", "route", "status"]
        )
        for key, total in list(self._counts.items()):
            requests.add_metric(key, total)
        yield requests
        latency = HistogramMetricFamily(
            "fittracker_http_request_duration_seconds", "HTTP request latency", labels=["plugin", "route"]
        )
        bounds = [*(str(b) for b in self._bounds), "+Inf"]
        for pair, cells in list(self._latency.items()):
            running, cumulative = 0.0, []
            for bound, in_bucket in zip(bounds, cells[:-1], strict=True):
                running += in_bucket
                cumulative.append((bound, running))
            latency.add_metric(pair, cumulative, cells[-1])
        yield latency
        yield GaugeMetricFamily(
            "fittracker_http_requests_in_flight", "HTTP requests in progress", value=self.in_flight
        )


class Metrics:
    """The core's metrics; plug-ins may register more on ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = RequestStats()
        self.registry.register(self.http)
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
