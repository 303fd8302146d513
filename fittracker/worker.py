"""``fittracker worker``: ONE plug-in served on its own, behind a router (split mode).

The worker builds the same application as ``fittracker serve`` but with only its plug-in and
without rate limiting (the router enforces limits for the whole deployment). It listens on a
Unix socket (local workers of a supervisor) or on TCP (remote upstreams), prints one ready
line, drains on SIGTERM/SIGINT like ``serve``, and never outlives its parent: it exits when
the process that started it dies, so a SIGKILLed supervisor leaves no orphans behind.

When ``internal.secret`` is set, every request must carry a valid signed
``X-FitTracker-Internal`` header (see :mod:`fittracker.internal_auth`): the method, the raw
path with its query string, and the ``X-Request-ID`` header are signed. Health probes are no
exception, so a worker's port is never an open side door.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from fittracker import internal_auth
from fittracker.config import Settings, build_schema, load_settings
from fittracker.errors import ConfigError, Unauthorized
from fittracker.http.parse_errors import answer_parse_errors_with_problems
from fittracker.http.problems import from_problem
from fittracker.http.requestid import HEADER as REQUEST_ID_HEADER
from fittracker.http.requestid import accept_or_make
from fittracker.http.security import security_headers
from fittracker.log import configure_logging, reset_request_id, set_request_id
from fittracker.plugins import PLUGINS_ENV, Discovery, discover
from fittracker.runtime import prepare_heap_for_serving

log = logging.getLogger("fittracker.worker")
PARENT_CHECK_INTERVAL_S = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``worker`` sub-command's flags."""
    parser.add_argument("--plugin", required=True, metavar="NAME", help="the plug-in to serve")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    parser.add_argument("--data-dir", metavar="DIR", help="where SQLite files and keys live")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--unix", type=Path, metavar="PATH", help="listen on this Unix socket")
    where.add_argument("--host", help="interface to listen on (TCP; default server.host)")
    parser.add_argument("--port", type=int, help="TCP port to listen on (0 picks a free one)")
    parser.add_argument("--worker-id", metavar="ID", help="name in logs (default: <plugin>-<pid>)")
    parser.add_argument(
        "--parent-pid", type=int, metavar="PID", help="exit when this process is no longer our parent"
    )


class WorkerIdFilter(logging.Filter):
    """Tags every log record with the worker id, so interleaved logs stay attributable."""

    def __init__(self, worker_id: str) -> None:
        super().__init__()
        self.worker_id = worker_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker_id = self.worker_id
        return True


def internal_secret(settings: Settings) -> str:
    secret = settings.section("internal").get("secret", "")
    return secret if isinstance(secret, str) else ""


def signature_guard(secret: str) -> Middleware:
    """A middleware refusing every request that a router holding ``secret`` did not sign."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        value = request.headers.get(internal_auth.HEADER)
        # Routers may sign the raw or the normalised path; both name this same request.
        if any(
            internal_auth.verify(secret, value, request.method, path, request_id)
            for path in {request.raw_path, request.path_qs}
        ):
            return await handler(request)
        # This runs before the request-context middleware: give the refusal an id ourselves.
        token = set_request_id(accept_or_make(request_id))
        try:
            log.warning(
                "refused an unsigned request",
                extra={"method": request.method, "path": request.path, "remote": request.remote},
            )
            response = from_problem(
                Unauthorized("this worker only answers requests forwarded by a FitTracker router", headers={})
            )
        finally:
            reset_request_id(token)
        return response

    return guard


def load_worker_settings(args: argparse.Namespace, found: Discovery) -> Settings:
    schema = build_schema(found.config_defaults())
    # The router enforces rate limits; inside its worker the plug-in runs in-process.
    overrides: dict[str, dict[str, Any]] = {
        "ratelimit": {"enabled": False},
        args.plugin: {"mode": "inprocess"},
    }
    if args.data_dir is not None:
        overrides["server"] = {"data_dir": args.data_dir}
    name = args.plugin
    if name not in schema:
        reason = found.failed.get(name, "not installed")
        raise ConfigError(f"worker: plug-in {name!r} is not loaded: {reason}")
    settings = load_settings(schema, args.config, overrides=overrides)
    if name not in found.plugins:
        reason = found.failed.get(name, "not installed")
        raise ConfigError(f"worker: plug-in {name!r} is not loaded: {reason}")
    if name in settings.section("plugins")["disabled"] or not settings.section(name).get("enabled", True):
        raise ConfigError(f"worker: plug-in {name!r} is disabled in the configuration")
    return settings


def build_worker_app(settings: Settings, found: Discovery) -> web.Application:
    from fittracker.app import build_app

    app = build_app(settings, found)
    secret = internal_secret(settings)
    if secret:
        app.middlewares.insert(0, signature_guard(secret))  # before anything else runs
    return app


def die_with_parent() -> None:
    """Ask Linux to send us SIGTERM when our parent dies (best effort; polling backs it up)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.warning("parent process %d is gone; shutting down", parent_pid)
            stop.set()
            return
        await asyncio.sleep(PARENT_CHECK_INTERVAL_S)


def _remove_stale_socket(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(f"worker: {path} exists and is not a socket")
        path.unlink()


async def serve_worker(
    settings: Settings, found: Discovery, args: argparse.Namespace, worker_id: str
) -> None:
    """Serve until SIGTERM/SIGINT or the parent's death, then finish in-flight requests."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = (
        asyncio.create_task(_watch_parent(args.parent_pid, stop), name="parent-watch")
        if args.parent_pid is not None
        else None
    )
    server = settings.section("server")
    app = build_worker_app(settings, found)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=server["shutdown_timeout"])
    socket_path: Path | None = args.unix
    try:
        await runner.setup()
        answer_parse_errors_with_problems(runner, security_headers(settings.section("http")["hsts"]))
        if socket_path is not None:
            _remove_stale_socket(socket_path)
            await web.UnixSite(runner, str(socket_path)).start()
            os.chmod(socket_path, 0o600)  # only our own user may talk to a local worker
            url = f"unix://{socket_path}"
        else:
            host = args.host or server["host"]
            port = server["port"] if args.port is None else args.port
            await web.TCPSite(runner, host, port, reuse_address=True).start()
            bound_host, bound_port = runner.addresses[0][:2]
            url = f"http://{bound_host}:{bound_port}"
        prepare_heap_for_serving()
        log.info("worker ready", extra={"url": url, "plugin": args.plugin})
        print(f"FitTracker worker {args.plugin} {worker_id} ready on {url}", flush=True)
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        if watcher is not None:
            watcher.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)  # Python 3.11's Unix server leaves its socket file behind
        log.info("stopped")


def main(args: argparse.Namespace) -> int:
    """Run ``fittracker worker`` (called by the CLI, which reports ConfigError)."""
    if args.unix is not None and args.port is not None:
        raise ConfigError("worker: --port goes with --host, not with --unix")
    if args.parent_pid is not None:
        die_with_parent()
        if os.getppid() != args.parent_pid:  # it died before we could ask to be told
            return 1
    found = discover(environ={PLUGINS_ENV: args.plugin})
    settings = load_worker_settings(args, found)
    worker_id = args.worker_id or f"{args.plugin}-{os.getpid()}"
    log_cfg = settings.section("log")
    configure_logging(log_cfg["level"], log_cfg["format"])
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "fittracker":
            handler.addFilter(WorkerIdFilter(worker_id))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        asyncio.run(serve_worker(settings, found, args, worker_id))
    else:
        uvloop.run(serve_worker(settings, found, args, worker_id))
    return 0
