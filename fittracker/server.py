"""Running the application: bind, announce where it listens, drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from fittracker import __version__, system
from fittracker.app import build_app
from fittracker.config import ENV_PREFIX, Settings
from fittracker.http.parse_errors import answer_parse_errors_with_problems
from fittracker.http.probes import answer_probes_first
from fittracker.http.security import security_headers
from fittracker.plugins import Discovery
from fittracker.runtime import RUNTIME, prepare_heap_for_serving

log = logging.getLogger("fittracker.server")
# How workers learn where the router listens when server.public_url is not set.
PUBLIC_URL_ENV_VAR = f"{ENV_PREFIX}SERVER__PUBLIC_URL"


async def serve(settings: Settings, found: Discovery, *, ready_line: bool = True) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and close everything."""
    server = settings.section("server")
    # Signal handlers first: a SIGTERM that arrives while starting must still stop us cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Bind before the app starts: the supervisor starts workers during start-up, and they (built
    # from the TOML file alone, without our --host/--port) must be told where we really listen.
    socks = bind_sockets(server["host"], server["port"])
    try:
        app = build_app(settings, found)
        runtime = app[RUNTIME]
        supervisor = runtime.split.supervisor if runtime.split is not None else None
        if not server["public_url"]:
            internal = internal_url(socks[0])
            runtime.services.base_url = internal
            if supervisor is not None:
                supervisor.set_env(PUBLIC_URL_ENV_VAR, internal)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=server["shutdown_timeout"])
        await runner.setup()
        hsts = settings.section("http")["hsts"]
        answer_parse_errors_with_problems(runner, security_headers(hsts))
        if not settings.section("log")["access_log_probes"]:
            answer_probes_first(runner, system.liveness_body, security_headers(hsts), runtime.metrics.http)
        if supervisor is not None:
            # Open the door once the workers can serve; SIGHUP rolls them one by one.
            within = float(settings.section("supervisor")["ready_timeout_s"])
            if not await supervisor.wait_ready(within):
                log.warning("not every worker is ready yet; serving with those that are")
            rolling: set[asyncio.Task[None]] = set()
            loop.add_signal_handler(
                signal.SIGHUP, lambda: _spawn(loop, supervisor.rolling_restart(), rolling)
            )
        for sock in socks:  # from now on the sites own (and close) them
            await web.SockSite(runner, sock).start()
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    host, port = socks[0].getsockname()[:2]
    url = f"http://{host}:{port}"
    served = sorted([*runtime.contexts, *(runtime.split.proxies if runtime.split else ())])
    plugins = ", ".join(served) or "none"
    prepare_heap_for_serving()
    log.info("listening", extra={"url": url, "plugins": served, "version": __version__})
    if ready_line:
        print(f"FitTracker {__version__} listening on {url} (data: {settings.data_dir}, plug-ins: {plugins})")
        sys.stdout.flush()

    try:
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("stopped")


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` names (as asyncio would bind), all on one port.

    ``""`` means every interface. With port 0 the first socket picks a free port and the
    others take the same one.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, address in dict.fromkeys((info[0], info[4]) for info in infos):
            if socks and port == 0:
                address = (address[0], socks[0].getsockname()[1], *address[2:])
            # As aiohttp did: SO_REUSEADDR (on POSIX), and IPv6 sockets are IPv6-only.
            socks.append(socket.create_server(address, family=family))
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def internal_url(sock: socket.socket) -> str:
    """Where this process can reach a listening socket: loopback when it listens on a wildcard."""
    host, port = sock.getsockname()[:2]
    ip = ipaddress.ip_address(host)
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    return f"http://{ip}:{port}" if ip.version == 4 else f"http://[{ip}]:{port}"


def _spawn(
    loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None], keep: set[asyncio.Task[None]]
) -> None:
    def done(task: asyncio.Task[None]) -> None:
        keep.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("rolling restart failed: %s", task.exception())

    task = loop.create_task(work, name="rolling-restart")
    keep.add(task)  # the loop holds tasks weakly
    task.add_done_callback(done)


def run(settings: Settings, found: Discovery) -> None:
    """Run :func:`serve` on uvloop (when available)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        asyncio.run(serve(settings, found))
        return
    uvloop.run(serve(settings, found))
