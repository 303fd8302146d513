"""The core's own endpoints: health, metrics, the OpenAPI document and the docs page."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from fittracker import __version__
from fittracker.context import PluginContext
from fittracker.health import run_checks
from fittracker.hookspecs import HealthCheck
from fittracker.http.responses import dumps, json_response
from fittracker.metrics import CONTENT_TYPE_LATEST
from fittracker.runtime import RUNTIME, Runtime

SERVICE = "fittracker"
OPENAPI = web.AppKey("fittracker.openapi", dict)  # assembled once at start-up
CHECKS = web.AppKey("fittracker.checks", dict)  # plug-in name -> {check name: check}


_stamp: tuple[int, str] = (0, "")


def _now() -> str:
    """The current UTC time to the second, formatted once per second (health is polled a lot)."""
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds"))
    return _stamp[1]


_liveness: tuple[str, bytes] = ("", b"")


def liveness_body() -> bytes:
    """``GET /health``'s JSON, rendered once per second (the probe lane serves it too)."""
    global _liveness
    stamp = _now()
    if _liveness[0] != stamp:
        body = {"status": "ok", "service": SERVICE, "version": __version__, "timestamp": stamp}
        _liveness = (stamp, dumps(body))
    return _liveness[1]


async def health(request: web.Request) -> web.Response:
    return web.Response(body=liveness_body(), content_type="application/json")


async def plugin_report(ctx: PluginContext, checks: dict[str, HealthCheck], mode: str) -> dict[str, Any]:
    status, report = await run_checks(checks)
    return {"status": status, "version": ctx.info.version, "mode": mode, "workers": [], "checks": report}


async def health_services(request: web.Request) -> web.Response:
    runtime: Runtime = request.app[RUNTIME]
    checks = request.app[CHECKS]
    services = {
        name: await plugin_report(ctx, checks[name], "inprocess") for name, ctx in runtime.contexts.items()
    }
    if runtime.split is not None:
        services.update({name: runtime.split.describe(name) for name in runtime.split.proxies})
    services = dict(sorted(services.items()))
    status = "ok" if all(s["status"] == "ok" for s in services.values()) else "degraded"
    return json_response({"status": status, "services": services}, status=200 if status == "ok" else 503)


def plugin_health_handler(ctx: PluginContext) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET <prefix>/health`` for one plug-in (registered on its own sub-app)."""

    async def handler(request: web.Request) -> web.Response:
        checks = request.config_dict[CHECKS][ctx.name]
        status, report = await run_checks(checks)
        body = {
            "status": status,
            "plugin": ctx.name,
            "version": ctx.info.version,
            "timestamp": _now(),
            "checks": report,
        }
        return json_response(body, status=200 if status == "ok" else 503)

    return handler


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.Response(body=runtime.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FitTracker API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.m{display:inline-block;width:4.5rem;font-weight:bold}</style></head>
<body><h1>FitTracker API</h1>
<p>The machine-readable spec is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
<div id="ops">Loading…</div>
<script>
fetch('/api/v1/openapi.json').then(r => r.json()).then(spec => {
  const root = document.getElementById('ops'); root.textContent = '';
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(item))
      (byTag[(op.tags || ['other'])[0]] ||= []).push([method.toUpperCase(), path, op.summary || '']);
  for (const [tag, ops] of Object.entries(byTag)) {
    const h = document.createElement('h2'); h.textContent = tag; root.appendChild(h);
    for (const [m, p, s] of ops) {
      const d = document.createElement('div');
      const mm = document.createElement('span'); mm.className = 'm'; mm.textContent = m;
      const c = document.createElement('code'); c.textContent = p;
      d.append(mm, c, ' ' + s); root.appendChild(d);
    }
  }
});
</script></body></html>
"""


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/health/services", health_services)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/docs", docs)


def core_openapi(plugin_prefixes: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The core's part of the spec, including every plug-in's ``<prefix>/health``."""

    def get(
        summary: str, tag: str, op_id: str, schema: dict[str, Any], media: str = "application/json"
    ) -> Any:
        return {
            "get": {
                "summary": summary,
                "operationId": op_id,
                "tags": [tag],
                "responses": {"200": {"description": "OK", "content": {media: {"schema": schema}}}},
            }
        }

    status_schema = {"type": "string", "enum": ["ok", "error", "degraded"]}
    health_schema = {
        "type": "object",
        "required": ["status", "service", "version", "timestamp"],
        "properties": {
            "status": status_schema,
            "service": {"type": "string"},
            "version": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
        },
    }
    plugin_health = {
        "type": "object",
        "required": ["status", "plugin", "version", "checks"],
        "properties": {
            "status": status_schema,
            "plugin": {"type": "string"},
            "version": {"type": "string"},
            "timestamp": {"type": "string"},
            "checks": {"type": "object", "additionalProperties": {"type": "object"}},
        },
    }
    services_schema = {
        "type": "object",
        "required": ["status", "services"],
        "properties": {
            "status": status_schema,
            "services": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["status", "mode", "workers"],
                    "properties": {
                        "status": status_schema,
                        "mode": {"type": "string"},
                        "version": {"type": "string"},
                        "workers": {"type": "array", "items": {"type": "object"}},
                        "checks": {"type": "object"},
                    },
                },
            },
        },
    }
    paths: dict[str, Any] = {
        "/health": get("Liveness of the server", "system", "health", health_schema),
        "/health/services": get(
            "Every plug-in with its checks and mode", "system", "healthServices", services_schema
        ),
        "/metrics": get("Prometheus metrics", "system", "metrics", {"type": "string"}, "text/plain"),
        "/api/v1/openapi.json": get("This document", "system", "openapi", {"type": "object"}),
        "/docs": get("Human-readable API docs", "system", "docs", {"type": "string"}, "text/html"),
    }
    paths["/health/services"]["get"]["responses"]["503"] = {
        "description": "A plug-in is unhealthy",
        "content": {"application/json": {"schema": services_schema}},
    }
    for plugin, prefixes in sorted(plugin_prefixes.items()):
        for prefix in prefixes:
            op_id = "health_" + prefix.strip("/").replace("/", "_")
            item = get(f"Health of the {plugin} plug-in", plugin, op_id, plugin_health)
            item["get"]["responses"]["503"] = {
                "description": "A check failed",
                "content": {"application/json": {"schema": plugin_health}},
            }
            paths[f"{prefix}/health"] = item
    return {"paths": paths, "tags": [{"name": "system", "description": "The server itself"}]}
