"""Benchmark the split-mode router: throughput and added latency against direct access.

    .venv/bin/python scripts/bench_router.py [--duration 5] [--concurrency 32] [--json]

Starts three kinds of separate processes, all by re-running this file with a role flag:
one upstream (a small aiohttp app answering ``GET /api/v1/bench/item`` with JSON) on a
loopback port, one router (a ``PluginProxy`` for that upstream behind the same request-id
middleware contract as the real server) on another port, and the load: ``wrk`` when it is
installed, else a Python aiohttp load loop in its own process. Each target is warmed up,
then loaded for ``--duration`` seconds, direct first and through the router second, in the
same run. Prints req/s, p50 and p99 for both and the difference. Timings are reported, never
asserted; every process is stopped before the script exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from bench_common import percentile

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/v1/bench/item"
ITEM = {"id": "ex-0001", "name": "Barbell Squat", "category": "strength", "primary_muscles": ["quadriceps"]}


# -- the processes under test -------------------------------------------------------------


def _run(app: web.Application, port: int) -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # uvloop is optional here: fall back to asyncio's loop
        pass
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, handle_signals=True)


def serve_upstream(port: int) -> None:
    body = json.dumps(ITEM).encode()

    async def item(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get(PATH, item)
    app.router.add_get("/api/v1/bench/health", health)
    _run(app, port)


def serve_router(port: int, upstream_url: str) -> None:
    from fittracker.http.requestid import HEADER, accept_or_make
    from fittracker.log import reset_request_id, set_request_id
    from fittracker.router import PluginProxy, Upstream, UpstreamPool

    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = set_request_id(accept_or_make(request.headers.get(HEADER)))
        try:
            return await handler(request)
        finally:
            reset_request_id(token)

    pool = UpstreamPool("bench")
    pool.add(Upstream(id="bench-1", plugin="bench", url=upstream_url, kind="remote", state="ready"))
    proxy = PluginProxy(pool, probe_path="/api/v1/bench/health")

    async def lifecycle(_app: web.Application) -> Any:
        await proxy.start()
        yield
        await proxy.close()

    app = web.Application(middlewares=[request_context])
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    _run(app, port)


# -- load generation ----------------------------------------------------------------------


async def _load(url: str, duration_s: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def run_python_load(url: str, duration_s: float, concurrency: int) -> dict[str, Any]:
    """The Python load loop, in its own process so it does not share a CPU with the router."""
    args = ["--role", "load", "--url", url, "--duration", str(duration_s), "--concurrency", str(concurrency)]
    out = subprocess.run(  # noqa: S603 - our own interpreter running this very file
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


_WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    wrk: str,
    url: str,
    duration_s: float,
    concurrency: int,
    *,
    headers: list[str] | None = None,
    script: str | None = None,
) -> dict[str, Any]:
    """Load ``url`` with wrk (optionally with request headers or a Lua script) and parse its report."""
    threads = max(1, min(4, os.cpu_count() or 1))
    extra = [arg for header in headers or () for arg in ("-H", header)]
    extra += ["-s", script] if script else []
    out = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        [
            wrk,
            f"-t{threads}",
            f"-c{max(concurrency, threads)}",
            f"-d{max(1, round(duration_s))}s",
            "--latency",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=True,
    ).stdout
    percentiles = {int(p): float(v) * _UNIT_MS[unit] for p, v, unit in _WRK_LATENCY.findall(out)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests": int(total.group(1)) if total else 0,
        "errors": int(errors.group(1)) if errors else 0,
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": percentiles.get(50, float("nan")),
        "p99_ms": percentiles.get(99, float("nan")),
    }


# -- orchestration ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen([sys.executable, __file__, *args], env=env)  # noqa: S603


async def wait_ready(url: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not become ready within {timeout_s} s")
            await asyncio.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # run_app's graceful shutdown
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def benchmark(duration_s: float, concurrency: int, warmup_s: float) -> dict[str, Any]:
    up_port, router_port = free_port(), free_port()
    processes = [spawn("--role", "upstream", "--port", str(up_port))]
    try:
        processes.append(
            spawn("--role", "router", "--port", str(router_port), "--upstream", f"http://127.0.0.1:{up_port}")
        )
        direct = f"http://127.0.0.1:{up_port}{PATH}"
        routed = f"http://127.0.0.1:{router_port}{PATH}"
        asyncio.run(wait_ready(direct))
        asyncio.run(wait_ready(routed))
        wrk = shutil.which("wrk")
        tool = "wrk" if wrk else "python aiohttp loop"

        def load(url: str, seconds: float) -> dict[str, Any]:
            if wrk:
                return run_wrk(wrk, url, seconds, concurrency)
            return run_python_load(url, seconds, concurrency)

        results: dict[str, Any] = {"tool": tool, "duration_s": duration_s, "concurrency": concurrency}
        for name, url in (("direct", direct), ("router", routed)):
            load(url, warmup_s)
            results[name] = load(url, duration_s)
        return results
    finally:
        for process in reversed(processes):
            stop(process)


def print_table(results: dict[str, Any]) -> None:
    direct, router = results["direct"], results["router"]
    print(
        f"load: {results['tool']}, {results['concurrency']} connections, "
        f"{results['duration_s']:g} s per target, GET {PATH} (cores: {os.cpu_count()})"
    )
    print(f"{'target':<10}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>11}{'errors':>8}")
    for name, row in (("direct", direct), ("router", router)):
        print(
            f"{name:<10}{row['rps']:>12.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['requests']:>11}{row['errors']:>8}"
        )
    share = router["rps"] / direct["rps"] * 100 if direct["rps"] else float("nan")
    added_p50, added_p99 = router["p50_ms"] - direct["p50_ms"], router["p99_ms"] - direct["p99_ms"]
    print(
        f"router: {share:.0f}% of direct throughput; "
        f"added latency p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms"
    )
    print("(all processes share this machine's cores: compare the two rows, not absolute numbers)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per target")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--role", choices=("bench", "upstream", "router", "load"), default="bench")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "upstream":
        serve_upstream(args.port)
    elif args.role == "router":
        serve_router(args.port, args.upstream)
    elif args.role == "load":
        print(json.dumps(asyncio.run(_load(args.url, args.duration, args.concurrency))))
    else:
        duration = min(max(args.duration, 0.5), 60.0)  # bounded whatever is asked
        results = benchmark(duration, max(1, args.concurrency), min(max(args.warmup, 0.0), 10.0))
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
