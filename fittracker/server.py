"""Running the application: bind, announce where it listens, drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from fittracker import __version__
from fittracker.app import build_app
from fittracker.config import Settings
from fittracker.plugins import Discovery
from fittracker.runtime import RUNTIME

log = logging.getLogger("fittracker.server")


async def serve(settings: Settings, found: Discovery, *, ready_line: bool = True) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and close everything."""
    server = settings.section("server")
    # Signal handlers first: a SIGTERM that arrives while starting must still stop us cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = build_app(settings, found)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=server["shutdown_timeout"])
    await runner.setup()
    runtime = app[RUNTIME]
    supervisor = runtime.split.supervisor if runtime.split is not None else None
    if supervisor is not None:
        # Open the door once the workers can serve; SIGHUP rolls them one by one.
        within = float(settings.section("supervisor")["ready_timeout_s"])
        if not await supervisor.wait_ready(within):
            log.warning("not every worker is ready yet; serving with those that are")
        rolling: set[asyncio.Task[None]] = set()
        loop.add_signal_handler(signal.SIGHUP, lambda: _spawn(loop, supervisor.rolling_restart(), rolling))
    site = web.TCPSite(runner, server["host"], server["port"], reuse_address=True)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    if not server["public_url"]:
        runtime.services.base_url = url
    served = sorted([*runtime.contexts, *(runtime.split.proxies if runtime.split else ())])
    plugins = ", ".join(served) or "none"
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
