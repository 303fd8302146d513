"""Prometheus ``/metrics``: requests and latency by plug-in and route, in-flight, bus events."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fittracker import PluginContext, PluginInfo, hookimpl
from fittracker.http import json_response
from fittracker.runtime import RUNTIME
from tests.conftest import MakeClient
from tests.helpers import auth

NOTES = "/api/v1/notes"
Client = TestClient[Any, Any]


class HopsPlugin:
    """A route with a path parameter, and one that answers with a redirect."""

    @hookimpl
    def fittracker_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="hops", version="0.0.1", prefixes=("/api/v1/hops",))

    @hookimpl
    def fittracker_setup(self, app: web.Application, ctx: PluginContext) -> None:
        async def item(request: web.Request) -> web.Response:
            return json_response({"id": request.match_info["hop_id"]})

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPFound("/health")

        app.router.add_get("/api/v1/hops/moved", moved)
        app.router.add_get("/api/v1/hops/{hop_id}", item)

    @hookimpl
    def fittracker_openapi(self, ctx: PluginContext) -> Mapping[str, Any]:
        ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
        return {
            "paths": {
                "/api/v1/hops/{hop_id}": {"get": {"operationId": "getHop", "responses": {"200": ok}}},
                "/api/v1/hops/moved": {
                    "get": {"operationId": "movedHop", "responses": {"302": {"description": "Moved"}}}
                },
            }
        }


@pytest.fixture(autouse=True)
def _notes_installed(installed_test_plugins: Path) -> None:
    """The fixture plug-in ``notes`` is installed for every test here."""


async def scrape(client: Client) -> dict[str, list[Sample]]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels`` (0 when there is none)."""
    found = [s for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0].value if found else 0.0


async def test_metrics_is_prometheus_text(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"])
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = await resp.text()
    assert "# HELP fittracker_http_requests_total HTTP requests served" in text
    assert "# TYPE fittracker_http_request_duration_seconds histogram" in text
    assert "# TYPE fittracker_http_requests_in_flight gauge" in text
    list(text_string_to_metric_families(text))  # it parses


async def test_requests_by_plugin_route_method_and_status(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes", "hops"], extra=[HopsPlugin()])
    token = client.app[RUNTIME].auth.issue("u1", "user", sid="s1").token
    for _ in range(2):
        assert (await client.post(NOTES, json={"text": "x"}, headers=auth(token))).status == 201
    assert (await client.get(NOTES, headers=auth(token))).status == 200
    assert (await client.post(NOTES, json={"text": ""}, headers=auth(token))).status == 422
    assert (await client.post(NOTES, json={"text": "x"})).status == 401
    assert (await client.get("/api/v1/hops/abc")).status == 200
    assert (await client.get("/api/v1/hops/xyz")).status == 200
    assert (await client.get("/nope/1")).status == 404
    assert (await client.get("/nope/2")).status == 404
    assert (await client.get(f"{NOTES}/nope")).status == 404
    assert (await client.delete(NOTES)).status == 405
    assert (await client.get("/health")).status == 200

    samples = await scrape(client)
    total = "fittracker_http_requests_total"

    def count(plugin: str, route: str, method: str, status: str) -> float:
        return value(samples, total, plugin=plugin, route=route, method=method, status=status)

    assert count("notes", NOTES, "POST", "201") == 2
    assert count("notes", NOTES, "GET", "200") == 1
    assert count("notes", NOTES, "POST", "422") == 1
    assert count("notes", NOTES, "POST", "401") == 1
    # the route template, never the raw path (bounded label values)
    assert count("hops", "/api/v1/hops/{hop_id}", "GET", "200") == 2
    routes = {s.labels["route"] for s in samples[total]}
    assert not any("abc" in r or "xyz" in r or "nope" in r for r in routes), routes
    assert count("core", "unmatched", "GET", "404") == 2
    assert count("notes", "unmatched", "GET", "404") == 1
    assert count("notes", "unmatched", "DELETE", "405") == 1
    assert count("core", "/health", "GET", "200") == 1
    assert {s.labels["plugin"] for s in samples[total]} == {"notes", "hops", "core"}


async def test_redirects_are_counted_with_their_status(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes", "hops"], extra=[HopsPlugin()])
    resp = await client.get("/api/v1/hops/moved", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/health"
    assert len(resp.headers["X-Request-ID"]) == 32
    samples = await scrape(client)
    labels = {"plugin": "hops", "route": "/api/v1/hops/moved", "method": "GET"}
    assert value(samples, "fittracker_http_requests_total", **labels, status="302") == 1
    assert value(samples, "fittracker_http_requests_total", **labels, status="500") == 0


async def test_latency_histogram(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"])
    for _ in range(3):
        await client.get(f"{NOTES}/stats")
    samples = await scrape(client)
    name = "fittracker_http_request_duration_seconds"
    labels = {"plugin": "notes", "route": f"{NOTES}/stats"}
    assert value(samples, f"{name}_count", **labels) == 3
    assert value(samples, f"{name}_sum", **labels) > 0
    buckets = [s for s in samples[f"{name}_bucket"] if labels.items() <= s.labels.items()]
    assert value(samples, f"{name}_bucket", **labels, le="+Inf") == 3
    counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
    assert counts == sorted(counts)  # cumulative
    assert len(buckets) > 5


async def test_in_flight_gauge(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"])
    gauge = "fittracker_http_requests_in_flight"
    assert value(await scrape(client), gauge) == 1  # the scrape itself
    slow = asyncio.create_task(client.get(f"{NOTES}/slow", params={"seconds": "0.3"}))
    try:
        for _ in range(100):
            if value(await scrape(client), gauge) == 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the slow request never showed as in flight")
    finally:
        assert (await slow).status == 200
    assert value(await scrape(client), gauge) == 1


async def test_bus_events_published_and_handled(make_client: MakeClient) -> None:
    client = await make_client(plugins=["notes"])
    token = client.app[RUNTIME].auth.issue("u1", "user", sid="s1").token
    for text in ("a", "b"):
        assert (await client.post(NOTES, json={"text": text}, headers=auth(token))).status == 201

    handled = "fittracker_events_handled_total"
    for _ in range(250):
        samples = await scrape(client)
        if value(samples, handled, group="notes", type="note.created", outcome="ok") == 2:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail(f"events not handled: {samples.get(handled)}")
    assert value(samples, "fittracker_events_published_total", type="note.created") == 2
    stats = await (await client.get(f"{NOTES}/stats")).json()
    assert stats["handled"] == 2


async def test_rate_limited_requests_are_counted(make_client: MakeClient) -> None:
    config = {"ratelimit": {"enabled": True, "global_limit": 10, "plugin_limit": 1}}
    client = await make_client(plugins=["notes"], config=config)
    assert (await client.get(f"{NOTES}/stats")).status == 200
    assert (await client.get(f"{NOTES}/stats")).status == 429
    samples = await scrape(client)  # /metrics itself is never limited
    assert value(samples, "fittracker_rate_limited_total", scope="plugin") == 1
    assert value(samples, "fittracker_http_requests_total", route=f"{NOTES}/stats", status="429") == 1


async def test_each_app_has_its_own_registry(make_client: MakeClient) -> None:
    first = await make_client(plugins=["notes"])
    second = await make_client(plugins=["notes"])
    await first.get(f"{NOTES}/stats")
    assert value(await scrape(first), "fittracker_http_requests_total", route=f"{NOTES}/stats") == 1
    assert value(await scrape(second), "fittracker_http_requests_total", route=f"{NOTES}/stats") == 0
