"""Running the application: bind, announce where it listens, drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

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
    site = web.TCPSite(runner, server["host"], server["port"], reuse_address=True)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    runtime = app[RUNTIME]
    if not server["public_url"]:
        runtime.services.base_url = url
    plugins = ", ".join(sorted(runtime.contexts)) or "none"
    log.info("listening", extra={"url": url, "plugins": sorted(runtime.contexts), "version": __version__})
    if ready_line:
        print(f"FitTracker {__version__} listening on {url} (data: {settings.data_dir}, plug-ins: {plugins})")
        sys.stdout.flush()

    try:
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("stopped")


def run(settings: Settings, found: Discovery) -> None:
    """Run :func:`serve` on uvloop (when available)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        asyncio.run(serve(settings, found))
        return
    uvloop.run(serve(settings, found))
