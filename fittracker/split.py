"""Split mode: plug-ins served by worker processes or remote hosts, behind this router.

Each plug-in's ``mode`` decides where it runs: ``inprocess`` (mounted here, as in a single
process), ``process`` (``workers`` local worker processes started and watched by the
:class:`~fittracker.supervisor.Supervisor`, reached over Unix sockets) or ``remote``
(``upstreams`` URLs on other hosts). Proxied plug-ins get a sub-app with one catch-all route
under their prefixes, so the core middlewares (request ids, access log, rate limits,
metrics) run in the router exactly as for in-process plug-ins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from fittracker.config import Settings
from fittracker.plugins import PluginInfo
from fittracker.router import PluginProxy, Upstream, UpstreamPool
from fittracker.supervisor import Supervisor

PROXIED = ("process", "remote")
log = logging.getLogger("fittracker.split")


@dataclass(slots=True)
class Split:
    """The router's view of proxied plug-ins."""

    proxies: dict[str, PluginProxy] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    supervisor: Supervisor | None = None

    def describe(self, plugin: str) -> dict[str, Any]:
        proxy = self.proxies[plugin]
        router = {k: v for k, v in proxy.describe().items() if k not in ("upstreams", "plugin")}
        return {
            "status": "ok" if proxy.pool.ready() else "error",
            "mode": self.modes[plugin],
            "workers": proxy.pool.describe(),
            "router": router,
        }

    async def start(self) -> None:
        for proxy in self.proxies.values():
            await proxy.start()
        for plugin, proxy in self.proxies.items():
            if self.modes[plugin] == "remote":
                for upstream in proxy.pool.all():  # admitted once they answer a probe
                    if await proxy.probe(upstream):
                        upstream.state = "ready"
        if self.supervisor is not None:
            await self.supervisor.start()

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        for proxy in self.proxies.values():
            await proxy.close()


def plugin_mode(settings: Settings, name: str) -> str:
    return str(settings.section(name).get("mode", "inprocess"))


def is_split(settings: Settings, names: Iterable[str]) -> bool:
    return any(plugin_mode(settings, name) in PROXIED for name in names)


def make_proxy(settings: Settings, info: PluginInfo) -> PluginProxy:
    router = settings.section("router")
    section = settings.section(info.name)
    pool = UpstreamPool(info.name)
    if section["mode"] == "remote":
        for n, url in enumerate(section["upstreams"]):
            pool.add(
                Upstream(
                    id=f"{info.name}-remote-{n}", plugin=info.name, url=url, kind="remote", state="ejected"
                )
            )
    return PluginProxy(
        pool,
        probe_path=f"{info.prefixes[0]}/health",
        balance=router["balance"],
        connect_timeout_s=router["connect_timeout_s"],
        read_timeout_s=router["read_timeout_s"],
        eject_after=router["eject_after"],
        retry_budget=router["retry_budget"],
        max_retries=router["max_retries"],
        retry_idempotent_sent=router["retry_idempotent_sent"],
        probe_interval_s=router["probe_interval_s"],
        breaker_failures=router["breaker_failures"],
        breaker_cooldown_s=router["breaker_cooldown_s"],
        secret=settings.section("internal")["secret"] or None,
    )


def proxy_app(proxy: PluginProxy) -> web.Application:
    """A sub-app that forwards everything under the plug-in's prefixes."""
    sub = web.Application()
    sub.router.add_route("*", "/{tail:.*}", proxy.handle)
    return sub


def make_supervisor(settings: Settings, split: Split, infos: dict[str, PluginInfo]) -> Supervisor | None:
    workers = {
        name: int(settings.section(name)["workers"])
        for name, mode in split.modes.items()
        if mode == "process"
    }
    if not workers:
        return None
    sup = settings.section("supervisor")
    socket_dir = Path(sup["socket_dir"]) if sup["socket_dir"] else settings.data_dir / "sockets"
    return Supervisor(
        config_file=settings.source,
        data_dir=settings.data_dir,
        socket_dir=socket_dir,
        pools={name: split.proxies[name].pool for name in workers},
        workers=workers,
        secret=settings.section("internal")["secret"],
        probe_path={name: f"{infos[name].prefixes[0]}/health" for name in workers},
        health_interval_s=sup["health_interval_s"],
        hung_after_s=sup["hung_after_s"],
        ready_timeout_s=sup["ready_timeout_s"],
        backoff_initial_s=sup["backoff_initial_s"],
        backoff_max_s=sup["backoff_max_s"],
        crash_loop_window_s=sup["crash_loop_window_s"],
        crash_loop_limit=sup["crash_loop_limit"],
        drain_timeout_s=sup["drain_timeout_s"],
    )
