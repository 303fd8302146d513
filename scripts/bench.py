"""``make bench``: the single-process server under load, each scenario next to its baseline.

    .venv/bin/python scripts/bench.py [--only ABCDEG] [--duration 10] [--warmup 2] [--json]

Starts, as separate processes on this machine: a bare aiohttp + uvloop hello-world app (the
baseline, from ``bench_router.py``) and ``fittracker serve`` on a fresh data dir (default
config, rate limits off: they would refuse a benchmark's traffic by design), and drives them
with ``wrk`` (installed with apt-get when missing). Scenarios of issue #7:

- A  ``GET /health`` vs the hello-world, 64 connections (target: >= 0.8 x the baseline);
- B  authenticated ``GET /api/v1/exercises?muscle=chest&limit=20``, 64 connections
     (target: >= 10,000 req/s, p99 < 20 ms), beside ``GET /health`` of the same server;
- C  authenticated ``POST /api/v1/workouts/{id}/sets`` by 64 users (4 workouts each, as many
     lifters logging at once; one user's sets are serialised by their derived data), 64
     connections (target: >= 3,000 req/s). Each set also feeds the consumer groups (the AI
     read model, the notification rules): the row reports how many events they had still to
     handle when the load stopped, how long they took to catch up, and the rate counting that
     time. Then ``kill -9`` of the server, a restart on the same data, and a count: every
     acknowledged (2xx) write must still be there;
- G  start to ready (process start to the ready line) and idle RSS (targets: <= 2 s,
     <= 120 MB).

- D  split mode: the same search straight to one workouts worker, through nginx and through
     the router (targets: >= 0.5 x nginx; added p99 <= 2 ms at 8 connections), and with 1 and 2
     workers per plug-in (``bench_split.py``);
- E  10,000 WebSockets through the router on ONE notifications worker, one notification
     fanned out to all, timed by client processes (``bench_ws.py``; target: p99 <= 500 ms,
     <= 30 KB per connection).

Prints one table (scenario, req/s, p50, p99, errors, server RSS, baseline, ratio). Timings are
reported, never asserted; the exit status is non-zero only when acknowledged writes were lost
or a process failed. The 100k-set endpoints (F) have their own scripts, as they seed data for
minutes: ``bench_progress.py`` and ``bench_ai.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from bench_common import CONNECTIONS, Row, ensure_wrk, report, row, rss_mb
from bench_router import free_port, run_wrk, spawn, stop, wait_ready
from bench_split import run_split
from bench_ws import run_ws

ROOT = Path(__file__).resolve().parent.parent
FITTRACKER = Path(sys.executable).with_name("fittracker")
USERS, WORKOUTS_EACH = 64, 4
SEARCH = "/api/v1/exercises?muscle=chest&limit=20"
SET_BODY = '{"exercise_id": "Barbell_Squat", "reps": 5, "weight_kg": 100}'
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway benchmark account


class Server:
    """``fittracker serve`` in its own process, its output in a file."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.config = data_dir / "bench.toml"
        self.config.write_text(
            "[ratelimit]\nenabled = false\n\n[workouts]\nmax_sets_per_workout = 5000\n", encoding="utf-8"
        )
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s = float("nan")

    def start(self) -> None:
        log = self.data_dir / "server.log"
        seen = log.stat().st_size if log.exists() else 0  # a restart appends to the same log
        out = log.open("ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed argument list
            [str(FITTRACKER), "serve", "--config", str(self.config),
             "--data-dir", str(self.data_dir / "data"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        while b"listening on" not in log.read_bytes()[seen:]:
            if self.proc.poll() is not None or time.monotonic() - started > 60:
                sys.exit(f"the server did not start; see {log}")
            time.sleep(0.01)
        self.ready_s = time.monotonic() - started

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def sign_up(url: str, n: int = 0) -> str:
    async with aiohttp.ClientSession() as session:
        body = {"email": f"bench{n}@example.com", "password": PASSWORD, "name": f"Bench {n}"}
        async with session.post(url + "/api/v1/auth/register", json=body) as resp:
            if resp.status == 409:
                async with session.post(url + "/api/v1/auth/login", json=body) as again:
                    return str((await again.json())["access_token"])
            return str((await resp.json())["access_token"])


async def lifters(url: str) -> list[tuple[str, str]]:
    """(token, workout id) pairs: ``USERS`` users with ``WORKOUTS_EACH`` workouts each."""
    pairs = []
    for n in range(USERS):
        token = await sign_up(url, n + 1)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            for _ in range(WORKOUTS_EACH):
                async with session.post(url + "/api/v1/workouts", json={}) as resp:
                    pairs.append((token, str((await resp.json())["id"])))
    return pairs


async def stored_sets(url: str, pairs: list[tuple[str, str]]) -> int:
    total = 0
    async with aiohttp.ClientSession() as session:
        for token, workout_id in pairs:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{url}/api/v1/workouts/{workout_id}", headers=headers) as resp:
                total += len((await resp.json())["sets"])
    return total


def set_script(path: Path, pairs: list[tuple[str, str]]) -> Path:
    """A wrk Lua script that POSTs a set to each (user, workout) in turn."""
    listed = ",\n".join(f'  {{"{token}", "{workout}"}}' for token, workout in pairs)
    path.write_text(
        f"""local pairs = {{
{listed}
}}
local n = 0
request = function()
  n = n + 1
  local p = pairs[(n % #pairs) + 1]
  local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. p[1]}}
  return wrk.format("POST", "/api/v1/workouts/" .. p[2] .. "/sets", headers, '{SET_BODY}')
end
""",
        encoding="utf-8",
    )
    return path


def consumer_backlog(events_db: Path) -> int:
    """Events the consumer groups (AI read model, notification rules...) have yet to handle."""
    with contextlib.closing(sqlite3.connect(events_db, timeout=30)) as db:
        head = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        unclaimed = db.execute("SELECT COALESCE(SUM(? - last_delivered_seq), 0) FROM groups", (head,))
        pending = db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        return int(unclaimed.fetchone()[0]) + int(pending)


def catch_up(events_db: Path, within_s: float = 120.0) -> float:
    """Seconds until the consumers have handled every event (the load has stopped)."""
    started = time.monotonic()
    while consumer_backlog(events_db) and time.monotonic() - started < within_s:
        time.sleep(0.1)
    return time.monotonic() - started


def measure(wrk: str, url: str, seconds: float, warmup: float, **options: Any) -> dict[str, Any]:
    if warmup:
        run_wrk(wrk, url, warmup, CONNECTIONS, **options)
    return run_wrk(wrk, url, seconds, CONNECTIONS, **options)


def run(seconds: float, warmup: float, only: str) -> tuple[list[Row], bool]:
    wrk = ensure_wrk()
    rows: list[Row] = []
    nothing_lost = True
    if set(only) & set("ABCG"):
        rows, nothing_lost = run_single(wrk, seconds, warmup, only)
    if "D" in only:
        rows += run_split(wrk, seconds, warmup)
    if "E" in only:
        rows += run_ws()
    return rows, nothing_lost


def run_single(wrk: str, seconds: float, warmup: float, only: str) -> tuple[list[Row], bool]:
    """Scenarios A, B, C and G on one single-process server."""
    rows: list[Row] = []
    nothing_lost = True
    hello_port = free_port()
    hello = spawn("--role", "upstream", "--port", str(hello_port))
    with tempfile.TemporaryDirectory(prefix="fittracker-bench-") as tmp:
        server = Server(Path(tmp), free_port())
        try:
            hello_url = f"http://127.0.0.1:{hello_port}/api/v1/bench/health"
            asyncio.run(wait_ready(hello_url))
            server.start()
            time.sleep(1.0)  # settle: background start-up work (catalog, read models) finishes
            idle = rss_mb(server.pid)
            ready_ms = server.ready_s * 1000
            nan = float("nan")
            rows.append(
                Row(
                    "G ready ms / idle RSS",
                    nan,
                    ready_ms,
                    nan,
                    0,
                    idle,
                    "targets <= 2000 ms, <= 120 MB",
                )
            )

            base = measure(wrk, hello_url, seconds, warmup)
            health = measure(wrk, server.url + "/health", seconds, warmup)
            if "A" in only:
                rows.append(row("A GET /health", health, server.pid, base, "hello-world"))

            if "B" in only:
                token = asyncio.run(sign_up(server.url))
                auth = {"headers": [f"Authorization: Bearer {token}"]}
                search = measure(wrk, server.url + SEARCH, seconds, warmup, **auth)
                rows.append(row("B GET /exercises (auth)", search, server.pid, base, "hello-world"))
                rows[-1].extra = {"vs /health of the same server": f"{search['rps'] / health['rps']:.2f} x"}

            if "C" in only:
                pairs = asyncio.run(lifters(server.url))
                script = set_script(Path(tmp) / "sets.lua", pairs)
                writes = run_wrk(wrk, server.url + "/", seconds, CONNECTIONS, script=str(script))
                acknowledged = writes["requests"] - writes["errors"]
                rows.append(row("C POST /workouts/{id}/sets", writes, server.pid, base, "hello-world"))
                backlog = consumer_backlog(server.data_dir / "data" / "events.db")
                caught_up_s = catch_up(server.data_dir / "data" / "events.db")
                server.kill9()
                server.start()
                kept = asyncio.run(stored_sets(server.url, pairs))
                rows[-1].extra = {
                    "acknowledged": acknowledged,
                    "present_after_kill_9": kept,
                    "events_behind_at_the_end": backlog,
                    "consumers_caught_up_after_s": round(caught_up_s, 1),
                    "sets_per_s_incl_catch_up": round(acknowledged / (seconds + caught_up_s)),
                }
                nothing_lost = kept >= acknowledged
            return rows, nothing_lost
        finally:
            server.stop()
            stop(hello)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per scenario")
    parser.add_argument("--only", default="ABCDEG", help="the scenarios to run (letters), e.g. --only AB")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    only = args.only.upper()
    rows, nothing_lost = run(min(max(args.duration, 1.0), 120.0), min(max(args.warmup, 0.0), 30.0), only)
    report(rows, args.json)
    if not nothing_lost:
        print("ACKNOWLEDGED WRITES WERE LOST", file=sys.stderr)
    return 0 if nothing_lost else 1


if __name__ == "__main__":
    sys.exit(main())
