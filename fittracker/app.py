"""Builds the aiohttp application for a set of plug-ins (one process, in-process mode).

Start-up order: the core opens shared resources (bus, databases, job schedulers) → plug-ins
start (their ``cleanup_ctx``) → the bus starts delivering. Clean-up runs in reverse: stop
delivering and finish jobs → plug-ins clean up → the core closes databases and the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp_cors
import aiojobs
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRuleMatching, MatchedSubAppResource

from fittracker import __version__, split, system
from fittracker.auth import AUTH, Auth
from fittracker.bus import open_bus
from fittracker.cache import open_cache
from fittracker.config import Settings
from fittracker.context import CONTEXT, PluginContext
from fittracker.errors import ConfigError
from fittracker.health import core_checks
from fittracker.http.middlewares import make_middlewares
from fittracker.http.ratelimit import CounterStore, MemoryCounterStore, RateLimiter
from fittracker.http.security import ClientAddress, make_header_hook
from fittracker.metrics import Metrics
from fittracker.openapi import assemble
from fittracker.plugins import Discovery, LoadedPlugin, PluginInfo
from fittracker.runtime import RUNTIME, Runtime
from fittracker.services import ServiceClient
from fittracker.storage import open_database

log = logging.getLogger("fittracker.app")
REVOCATIONS_TASK = web.AppKey("fittracker.revocations_task", asyncio.Task)


class PrefixRule(AbstractRuleMatching):
    """Matches requests under any of a plug-in's declared route prefixes."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        self.prefixes = tuple(prefixes)
        self._exact = frozenset(self.prefixes)
        self._under = tuple(p + "/" for p in self.prefixes)

    async def match(self, request: web.Request) -> bool:
        path = request.path  # runs for every sub-app on every request: no per-call allocations
        return path in self._exact or path.startswith(self._under)

    def get_info(self) -> dict[str, Any]:  # type: ignore[override]
        return {"prefixes": self.prefixes}

    @property
    def canonical(self) -> str:
        return ",".join(self.prefixes)


def mount_plugin(app: web.Application, sub: web.Application, prefixes: Iterable[str]) -> None:
    """Mount ``sub`` so its routes keep their absolute paths and only its prefixes reach it."""
    rule = PrefixRule(prefixes)
    # aiohttp's add_domain() is the public face of this; we match on path prefixes instead.
    app._add_subapp(lambda: MatchedSubAppResource(rule, sub), sub)


def enabled_plugins(found: Discovery, settings: Settings) -> list[LoadedPlugin]:
    disabled = set(settings.section("plugins")["disabled"])
    return [
        loaded
        for name, loaded in found.plugins.items()
        if name not in disabled and settings.section(name).get("enabled", True)
    ]


def _check_routes(sub: web.Application, info: PluginInfo) -> None:
    for resource in sub.router.resources():
        if not info.owns(resource.canonical):
            raise ConfigError(
                f"plug-in {info.name!r} registered {resource.canonical!r} "
                f"outside its prefixes {info.prefixes}"
            )


def _build_runtime(settings: Settings) -> Runtime:
    metrics = Metrics()
    rl = settings.section("ratelimit")
    limiter = None
    if rl["enabled"]:
        store: CounterStore = MemoryCounterStore()
        if rl["backend"] == "redis":
            from fittracker.http.ratelimit_redis import RedisCounterStore  # only when used

            store = RedisCounterStore(rl["redis_url"], fallback=MemoryCounterStore())
        limiter = RateLimiter(
            store,
            window_s=rl["window_s"],
            global_limit=rl["global_limit"],
            plugin_limit=rl["plugin_limit"],
        )
    bus_cfg = settings.section("bus")
    bus_options: dict[str, Any] = (
        {"url": bus_cfg["redis_url"]}
        if bus_cfg["backend"] == "redis"
        else {"poll_interval": bus_cfg["poll_interval_s"]}
    )
    bus = open_bus(bus_cfg["backend"], data_dir=settings.data_dir, metrics=metrics, **bus_options)
    cache_cfg = settings.section("cache")
    cache = open_cache(
        cache_cfg["backend"], max_entries=cache_cfg["max_entries"], redis_url=cache_cfg["redis_url"]
    )
    auth = Auth.from_settings(settings)
    auth.attach_bus(bus)
    server = settings.section("server")
    return Runtime(
        settings=settings,
        metrics=metrics,
        auth=auth,
        bus=bus,
        services=ServiceClient(server["public_url"] or f"http://{server['host']}:{server['port']}"),
        client_address=ClientAddress(settings.section("http")["trusted_proxies"]),
        limiter=limiter,
        cache=cache,
    )


def _make_context(runtime: Runtime, info: PluginInfo, hooks: Any = None) -> PluginContext:
    settings = runtime.settings
    storage = settings.section("storage")
    return PluginContext(
        info=info,
        settings=settings.section(info.name),
        config=settings,
        db=open_database(
            storage["backend"], info.name, data_dir=settings.data_dir, mongo_url=storage["mongo_url"]
        ),
        bus=runtime.bus,
        auth=runtime.auth,
        services=runtime.services,
        metrics=runtime.metrics,
        log=logging.getLogger(f"fittracker.plugins.{info.name}"),
        cache=runtime.cache,
        hooks=hooks,
    )


def build_app(settings: Settings, found: Discovery) -> web.Application:
    """The whole single-process application for the enabled plug-ins."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    runtime = _build_runtime(settings)
    app = web.Application(
        middlewares=make_middlewares(runtime), client_max_size=settings.section("server")["max_body_bytes"]
    )
    app[RUNTIME] = runtime
    app[AUTH] = runtime.auth
    app.on_response_prepare.append(make_header_hook(settings.section("http")["hsts"]))
    system.add_routes(app)

    origins = settings.section("http")["cors_origins"]
    cors_defaults = {
        origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
            allow_credentials=False, expose_headers="*", allow_headers="*", max_age=600
        )
        for origin in origins
    }
    checks: dict[str, dict[str, Any]] = {}
    openapi_parts: list[tuple[str, Any]] = []
    enabled = enabled_plugins(found, settings)
    if split.is_split(settings, (p.info.name for p in enabled)):
        runtime.split = split.Split()
    for loaded in enabled:
        info = loaded.info
        ctx = _make_context(runtime, info, found.pm.hook)
        mode = split.plugin_mode(settings, info.name)
        if runtime.split is not None and mode in split.PROXIED:
            # Served elsewhere: forward its prefixes; its spec is still assembled here.
            proxy = split.make_proxy(settings, info)
            runtime.split.proxies[info.name], runtime.split.modes[info.name] = proxy, mode
            proxied = split.proxy_app(proxy)
            proxied[CONTEXT] = ctx
            mount_plugin(app, proxied, info.prefixes)
            openapi_parts.append(
                (info.name, found.call(info.name, "fittracker_openapi", ctx=ctx, default={}))
            )
            continue
        runtime.contexts[info.name] = ctx
        sub = web.Application()
        sub[CONTEXT] = ctx
        for prefix in info.prefixes:
            sub.router.add_get(f"{prefix}/health", system.plugin_health_handler(ctx))
        found.call(info.name, "fittracker_setup", app=sub, ctx=ctx)
        _check_routes(sub, info)
        if cors_defaults:
            cors = aiohttp_cors.setup(sub, defaults=cors_defaults)
            for route in list(sub.router.routes()):
                cors.add(route)
        mount_plugin(app, sub, info.prefixes)
        checks[info.name] = {
            **core_checks(ctx),
            **found.call(info.name, "fittracker_health", ctx=ctx, default={}),
        }
        openapi_parts.append((info.name, found.call(info.name, "fittracker_openapi", ctx=ctx, default={})))
        handlers = found.call(info.name, "fittracker_event_handlers", ctx=ctx, app=sub, default={})
        if handlers:
            runtime.bus.subscribe(info.name, dict(handlers))
    app[system.CHECKS] = checks
    prefixes = {p.info.name: p.info.prefixes for p in enabled}
    if runtime.split is not None:
        infos = {p.info.name: p.info for p in enabled}
        runtime.split.supervisor = split.make_supervisor(settings, runtime.split, infos)
    app[system.OPENAPI] = assemble(
        "FitTracker", __version__, [("core", system.core_openapi(prefixes)), *openapi_parts]
    )

    # Lifecycle (see the module docstring for the order).
    app.on_startup.insert(0, _open_core)
    app.on_startup.append(_start_delivery)
    app.on_startup.append(_start_split)
    app.on_shutdown.append(_stop_split)  # drain workers first: they may still publish
    app.on_shutdown.append(_stop_delivery)
    app.on_cleanup.append(_close_core)
    return app


async def _open_core(app: web.Application) -> None:
    runtime = app[RUNTIME]
    await runtime.services.start()
    for ctx in runtime.contexts.values():
        ctx._jobs = aiojobs.Scheduler(close_timeout=runtime.settings.section("server")["shutdown_timeout"])


async def _start_delivery(app: web.Application) -> None:
    runtime = app[RUNTIME]
    await runtime.bus.start()
    app[REVOCATIONS_TASK] = asyncio.create_task(runtime.auth.follow_revocations(), name="revocations")


async def _start_split(app: web.Application) -> None:
    runtime = app[RUNTIME]
    if runtime.split is not None:
        await runtime.split.start()


async def _stop_split(app: web.Application) -> None:
    runtime = app[RUNTIME]
    if runtime.split is not None:
        await runtime.split.stop()


async def _stop_delivery(app: web.Application) -> None:
    runtime = app[RUNTIME]
    for ctx in runtime.contexts.values():
        if ctx._jobs is not None:
            await ctx._jobs.wait_and_close()
            ctx._jobs = None
    task = app.get(REVOCATIONS_TASK)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await runtime.bus.close()


async def _close_core(app: web.Application) -> None:
    runtime = app[RUNTIME]
    for ctx in runtime.contexts.values():
        with contextlib.suppress(Exception):
            await ctx.db.close()
    await runtime.services.close()
    # The Redis clients of the shared counters and cache (no-ops for the in-process ones).
    close = getattr(runtime.limiter.store, "close", None) if runtime.limiter is not None else None
    if close is not None:
        await close()
    await runtime.cache.close()
