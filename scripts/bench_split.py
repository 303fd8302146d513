"""Split mode under load: the router against nginx in front of one worker (D), and scaling.

    .venv/bin/python scripts/bench_split.py [--duration 5] [--warmup 1] [--json]

Scenario D of issue #7: ONE ``fittracker worker --plugin workouts`` on a loopback TCP port (a
remote upstream, no internal secret so that nginx can reach it too), and in front of it, as
separate processes on this machine:

- ``fittracker serve`` as the router (workouts ``mode = "remote"`` pointing at that worker,
  the users plug-in in-process; both on the same data dir, so the worker verifies the
  router's tokens with the same Ed25519 key pair from ``<data_dir>/keys``);
- nginx (installed with apt-get when missing; ``daemon off``, one worker process, access log
  off, upstream keep-alive 64), the baseline.

``wrk`` loads the authenticated ``GET /api/v1/exercises?muscle=chest&limit=20`` directly on the
worker, through nginx and through the router, at 64 and at 8 connections (targets: router
>= 0.5 x nginx req/s; added p99, router minus direct, <= 2 ms at 8 connections).

Then the same search through a router whose workouts plug-in runs as local worker processes
(``mode = "process"``) with ``workers = 1`` and ``workers = 2``, 64 connections: how the
throughput grows with workers on this machine's cores.

Prints one table (scenario, req/s, p50, p99, errors, RSS, baseline, ratio). Timings are
reported, never asserted; every process started here is stopped before the script exits
(errors and Ctrl-C included) and the temporary directories are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
from bench_common import CONNECTIONS, Row, ensure_tool, ensure_wrk, report, rss_mb
from bench_router import free_port, run_wrk, wait_ready

ROOT = Path(__file__).resolve().parent.parent
FITTRACKER = Path(sys.executable).with_name("fittracker")
SEARCH = "/api/v1/exercises?muscle=chest&limit=20"
WORKOUTS_HEALTH = "/api/v1/exercises/health"
PASSWORD = "correct horse battery staple"  # noqa: S105 - throwaway benchmark accounts
FAST_HASHING = "argon2_time_cost = 1\nargon2_memory_kib = 1024\nargon2_parallelism = 1\n"
FEW_CONNECTIONS = 8
READY_TIMEOUT_S = 60.0


# -- processes ----------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any FITTRACKER* setting of the caller's shell, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    return {**env, **extra}


class Process:
    """A child process whose output goes to a log file, stopped gracefully (then killed)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argument lists
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=env if env is not None else clean_env(),
                start_new_session=True,  # Ctrl-C reaches us only: we stop the children in order
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, pattern: str, timeout_s: float = READY_TIMEOUT_S) -> re.Match[str]:
        """Wait until the log shows ``pattern``; exit with the log's tail if the process dies."""
        rx = re.compile(pattern)
        while True:
            found = rx.search(self.log.read_text(encoding="utf-8", errors="replace"))
            if found:
                return found
            if self.proc.poll() is not None or time.monotonic() - self.started > timeout_s:
                tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not start (exit {self.proc.poll()}); log tail:\n{tail}")
            time.sleep(0.02)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def running(
    name: str, argv: list[str], log: Path, ready: str, env: dict[str, str] | None = None
) -> Iterator[tuple[Process, re.Match[str]]]:
    """Start a process, wait for its ready line, and always stop it on the way out."""
    process = Process(name, argv, log, env)
    try:
        yield process, process.wait_for(ready)
    finally:
        process.stop()


def serve_argv(config: Path, data_dir: Path, port: int) -> list[str]:
    return [str(FITTRACKER), "serve", "--config", str(config), "--data-dir", str(data_dir),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its children."""
    total = 0.0
    for each in [pid, *children(pid)]:
        with suppress(OSError):
            total += rss_mb(each)
    return total


async def register(url: str, n: int, session: aiohttp.ClientSession | None = None) -> dict[str, Any]:
    """Register benchmark user ``n`` (or log in when it exists); the auth response."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await register(url, n, own)
    body = {"email": f"bench{n}@example.com", "password": PASSWORD, "name": f"Bench {n}"}
    async with session.post(url + "/api/v1/auth/register", json=body) as resp:
        if resp.status == 201:
            created: dict[str, Any] = await resp.json()
            return created
        if resp.status != 409:
            raise RuntimeError(f"register: {resp.status} {await resp.text()}")
    async with session.post(url + "/api/v1/auth/login", json=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"login: {resp.status} {await resp.text()}")
        logged_in: dict[str, Any] = await resp.json()
        return logged_in


async def wait_workers(url: str, plugin: str, count: int, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until ``/health/services`` shows ``count`` ready workers for ``plugin``."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/health/services") as resp:
                    workers = (await resp.json())["services"][plugin]["workers"]
                    if sum(1 for w in workers if w.get("state") == "ready") >= count:
                        return
            except (aiohttp.ClientError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{plugin}: {count} workers were not ready within {timeout_s} s")
            await asyncio.sleep(0.1)


# -- nginx --------------------------------------------------------------------------------


def nginx_config(tmp: Path, port: int, upstream_port: int) -> Path:
    user = "user root root;\n" if os.geteuid() == 0 else ""  # the temp dir is ours only
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
worker_processes 1;
error_log {tmp / "error.log"} warn;
pid {tmp / "nginx.pid"};
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp_paths}    upstream worker {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://worker;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
""",
        encoding="utf-8",
    )
    return conf


# -- the scenarios ------------------------------------------------------------------------


def measure(
    wrk: str, url: str, seconds: float, warmup: float, connections: int, token: str
) -> dict[str, Any]:
    headers = [f"Authorization: Bearer {token}"]
    if warmup:
        run_wrk(wrk, url, warmup, connections, headers=headers)
    return run_wrk(wrk, url, seconds, connections, headers=headers)


def _row(name: str, got: dict[str, Any], rss: float) -> Row:
    return Row(name, got["rps"], got["p50_ms"], got["p99_ms"], got["errors"], rss)


def scenario_d(wrk: str, tmp: Path, seconds: float, warmup: float) -> list[Row]:
    nginx = ensure_tool("nginx", "nginx")
    data = tmp / "data"
    worker_port, nginx_port, router_port = free_port(), free_port(), free_port()
    worker_config = tmp / "worker.toml"
    worker_config.write_text('[internal]\nsecret = ""\n', encoding="utf-8")
    router_config = tmp / "router.toml"
    router_config.write_text(
        f'[ratelimit]\nenabled = false\n\n[internal]\nsecret = ""\n\n[router]\nprobe_interval_s = 0.5\n\n'
        f'[users]\nmode = "inprocess"\n{FAST_HASHING}\n'
        f'[workouts]\nmode = "remote"\nupstreams = ["http://127.0.0.1:{worker_port}"]\n',
        encoding="utf-8",
    )
    (tmp / "nginx").mkdir()
    conf = nginx_config(tmp / "nginx", nginx_port, worker_port)
    rows: list[Row] = []
    with ExitStack() as stack:
        worker, _ = stack.enter_context(
            running(
                "workouts worker",
                [str(FITTRACKER), "worker", "--plugin", "workouts", "--config", str(worker_config),
                 "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(worker_port)],
                tmp / "worker.log",
                r"ready on http://",
            )
        )  # fmt: skip
        router, _ = stack.enter_context(
            running(
                "router",
                serve_argv(router_config, data, router_port),
                tmp / "router.log",
                r"listening on http://",
                env=clean_env(FITTRACKER_PLUGINS="users,workouts"),
            )
        )
        proxy, _ = stack.enter_context(
            running(
                "nginx",
                [nginx, "-p", str(tmp / "nginx"), "-e", str(tmp / "nginx" / "error.log"), "-c", str(conf)],
                tmp / "nginx.log",
                r"",  # nginx prints nothing when it starts: readiness is probed below
            )
        )
        targets = {
            "direct worker": f"http://127.0.0.1:{worker_port}",
            "via nginx": f"http://127.0.0.1:{nginx_port}",
            "via router": f"http://127.0.0.1:{router_port}",
        }
        for base in targets.values():
            asyncio.run(wait_ready(base + WORKOUTS_HEALTH, READY_TIMEOUT_S))
        token = str(asyncio.run(register(targets["via router"], 0))["access_token"])
        rss = {
            "direct worker": lambda: rss_mb(worker.pid),
            "via nginx": lambda: tree_rss_mb(proxy.pid),
            "via router": lambda: rss_mb(router.pid),
        }
        for connections in (CONNECTIONS, FEW_CONNECTIONS):
            got = {
                name: measure(wrk, base + SEARCH, seconds, warmup, connections, token)
                for name, base in targets.items()
            }
            direct, nginx_got = got["direct worker"], got["via nginx"]
            for name, result in got.items():
                out = _row(f"D {name}, {connections} conn", result, rss[name]())
                if name != "direct worker":
                    out.extra = {
                        "added_p50_ms": round(result["p50_ms"] - direct["p50_ms"], 2),
                        "added_p99_ms": round(result["p99_ms"] - direct["p99_ms"], 2),
                    }
                if name == "via router":
                    out.baseline = f"nginx {nginx_got['rps']:.0f} req/s"
                    out.ratio = f"{result['rps'] / nginx_got['rps']:.2f} x" if nginx_got["rps"] else ""
                rows.append(out)
        rows[-1].extra["targets"] = "router >= 0.5 x nginx; added p99 <= 2 ms at 8 conn"
    return rows


def scenario_scaling(wrk: str, tmp: Path, seconds: float, warmup: float) -> list[Row]:
    rows: list[Row] = []
    first: dict[str, Any] | None = None
    for workers in (1, 2):
        here = tmp / f"workers-{workers}"
        here.mkdir()
        config = here / "split.toml"
        config.write_text(
            f'[ratelimit]\nenabled = false\n\n[internal]\nsecret = "bench-split-{os.getpid()}-secret"\n\n'
            f'[users]\nmode = "inprocess"\n{FAST_HASHING}\n'
            f'[workouts]\nmode = "process"\nworkers = {workers}\n',
            encoding="utf-8",
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running(
            f"router (workers = {workers})",
            serve_argv(config, here / "data", port),
            here / "router.log",
            r"listening on http://",
            env=clean_env(FITTRACKER_PLUGINS="users,workouts"),
        ) as (router, _):
            asyncio.run(wait_workers(url, "workouts", workers))
            token = str(asyncio.run(register(url, 0))["access_token"])
            got = measure(wrk, url + SEARCH, seconds, warmup, CONNECTIONS, token)
            out = _row(f"3 workers={workers}", got, tree_rss_mb(router.pid))
            out.extra = {"rss": "router + its workers"}
            if first is None:
                first = got
            else:
                out.baseline = f"workers=1 {first['rps']:.0f} req/s"
                out.ratio = f"{got['rps'] / first['rps']:.2f} x" if first["rps"] else ""
            rows.append(out)
    return rows


def run_split(wrk: str, seconds: float, warmup: float) -> list[Row]:
    """Scenario D (direct, nginx, router at 64 and 8 connections) and the workers=1/2 rows."""
    with tempfile.TemporaryDirectory(prefix="fittracker-bench-split-") as name:
        tmp = Path(name)
        (tmp / "d").mkdir()
        (tmp / "scaling").mkdir()
        rows = scenario_d(wrk, tmp / "d", seconds, warmup)
        rows += scenario_scaling(wrk, tmp / "scaling", seconds, warmup)
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    wrk = ensure_wrk()
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C: the finally blocks stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = run_split(wrk, min(max(args.duration, 1.0), 120.0), min(max(args.warmup, 0.0), 30.0))
    report(rows, args.json, "D RSS: the worker (direct), nginx master + worker (nginx), the router (router)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
