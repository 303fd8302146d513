"""Soak: minutes of mixed load on each deployment, with memory and open files watched for growth.

    .venv/bin/python scripts/soak.py [--minutes 10] [--deployment single|split|both] [--csv FILE]

Issue #8: run on demand (``make soak``), not in CI. For each deployment, starts ``fittracker
serve`` on a fresh data dir (rate limits off: they would refuse the load by design; fast argon2
settings, as the tests use): ``single`` is one process with every plug-in, ``split`` runs users
x1, workouts x2, notifications x2 and ai x1 as worker processes behind the router.

A load process (``soak_load.py``) registers ``--users`` users, each following the next two,
keeps one WebSocket per user open on the live stream (reconnecting with ``last_event_id`` when
it drops) and paces about ``--rate`` requests per second in all: sets logged into workouts
(one finished and a new one started every ~30 sets), exercise search, the workout list and
one workout, progress summary, records, volume and history, AI recommendations, the inbox and
its unread count, now and then "mark all read"; each user refreshes its tokens every 5
minutes.

Every ``--interval`` seconds (fewer in short runs: at least six samples after warm-up) the
main process and each of its children (the workers, found in /proc and named by their
``--worker-id``) are sampled: RSS, open file descriptors, threads; with the load's counters
(requests, statuses, errors, WebSocket messages and reconnects) and the events the consumer
groups have yet to handle, as progress lines on stderr and, with ``--csv``, in a file. The
first minute (``--warmup-s``; at most half the run) is warm-up: caches fill and pools open,
so it is not judged. Per process, the table compares warm-up end with the end: RSS growth in
MB and %, the RSS slope (MB per minute, least squares over the samples from warm-up end on),
open files and threads (reported, not judged); then the load's totals.

A process is **flat** when its RSS slope is below ``--max-slope`` MB/min and its open files
grew by at most ``--max-fd-growth``; otherwise it is **growing**. Exit status: 0 when every
process is flat and every request was answered, none with a 5xx; 1 otherwise (growth, a 5xx,
a request with no response, a worker replaced or gone mid-run); 2 when a process failed or
did not start. Every process started here is stopped before the script exits (errors and
Ctrl-C included); the temporary directory is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench import consumer_backlog
from bench_common import open_files, rss_mb, threads
from bench_router import free_port
from bench_split import FAST_HASHING, ROOT, children, clean_env, running, serve_argv, wait_workers

SPLIT_WORKERS = {"users": 1, "workouts": 2, "notifications": 2, "ai": 1}
LOAD = Path(__file__).with_name("soak_load.py")

# -- sampling -----------------------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    process: str
    pid: int
    rss_mb: float
    fds: int
    threads: int


def label(pid: int) -> str:
    """``worker-id`` of a worker (``workouts-1``), else the program's name and pid."""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return f"pid {pid}"
    if "--worker-id" in argv and argv.index("--worker-id") + 1 < len(argv):
        return argv[argv.index("--worker-id") + 1]
    return f"{Path(argv[0]).name} {pid}"


def sample(server_pid: int, t_s: float) -> list[Sample]:
    """The server and each of its children, now (the newest pid when a label repeats)."""
    found = {"server": server_pid}
    for pid in sorted(children(server_pid)):
        found[label(pid)] = pid
    out = []
    for name, pid in found.items():
        with contextlib.suppress(OSError):  # gone in between: a worker being replaced
            out.append(Sample(t_s, name, pid, rss_mb(pid), open_files(pid), threads(pid)))
    return out


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return float("nan")
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return float("nan")
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


# -- one deployment -----------------------------------------------------------------------


@dataclass
class Settings:
    minutes: float
    warmup_s: float
    interval_s: float
    users: int
    rate: float
    max_slope: float
    max_fd_growth: int
    keep: bool

    @property
    def duration_s(self) -> float:
        return self.minutes * 60


@dataclass
class Soak:
    deployment: str
    samples: list[Sample] = field(default_factory=list)
    loads: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    failure: str = ""
    data_mb: float = float("nan")


def config_text(deployment: str) -> str:
    text = f"[ratelimit]\nenabled = false\n\n[users]\n{FAST_HASHING}"
    if deployment == "split":
        text += 'mode = "process"\nworkers = 1\n\n'
        text += f'[internal]\nsecret = "soak-{os.getpid()}-{random.getrandbits(64):x}"\n\n'
        for plugin, count in SPLIT_WORKERS.items():
            if plugin != "users":
                text += f'[{plugin}]\nmode = "process"\nworkers = {count}\n\n'
    return text


class Load:
    """The load process: stats in a file, stopped by a line on its stdin."""

    def __init__(self, url: str, settings: Settings, tmp: Path) -> None:
        self.stats_file = tmp / "load.json"
        self.log = (tmp / "load.log").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter, our own script
            [sys.executable, str(LOAD), "--url", url, "--users", str(settings.users),
             "--rate", str(settings.rate), "--stats", str(self.stats_file)],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip

    def read(self) -> dict[str, Any]:
        try:
            got: dict[str, Any] = json.loads(self.stats_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return got

    def tail(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")[-3000:]

    def stop(self) -> dict[str, Any]:
        stdin: IO[str] | None = self.proc.stdin
        with contextlib.suppress(OSError, ValueError):
            if stdin is not None:
                stdin.write("stop\n")
                stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.read()


def soak(deployment: str, settings: Settings) -> Soak:
    """Start the deployment, load it for the run's duration while sampling, stop everything."""
    result = Soak(deployment)
    tmp = Path(tempfile.mkdtemp(prefix=f"fittracker-soak-{deployment}-"))
    try:
        config, port = tmp / "soak.toml", free_port()
        config.write_text(config_text(deployment), encoding="utf-8")
        url = f"http://127.0.0.1:{port}"
        argv, log = serve_argv(config, tmp / "data", port), tmp / "server.log"
        with running(deployment, argv, log, r"listening on http://", clean_env()) as (server, _):
            if deployment == "split":
                for plugin, count in SPLIT_WORKERS.items():
                    asyncio.run(wait_workers(url, plugin, count))
            load = Load(url, settings, tmp)
            try:
                result.failure = drive(server.proc, load, settings, result, tmp / "data")
            finally:
                result.final = load.stop()
                result.data_mb = (
                    sum(f.stat().st_size for f in (tmp / "data").rglob("*") if f.is_file()) / 2**20
                )
            if server.proc.poll() is not None and not result.failure:
                result.failure = f"the server exited ({server.proc.returncode})"
            if result.failure:
                result.failure += "\nserver log tail:\n" + server.log.read_text(errors="replace")[-3000:]
                result.failure += "\nload log tail:\n" + load.tail()
    finally:
        if settings.keep:
            print(f"{deployment}: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def backlog(events_db: Path) -> int:
    """Events the consumer groups have yet to handle (-1 when the log cannot be read)."""
    try:
        return consumer_backlog(events_db)
    except sqlite3.Error:
        return -1


def drive(server: subprocess.Popen[bytes], load: Load, settings: Settings, result: Soak, data: Path) -> str:
    """Wait for the load to run, then sample on schedule; a failure's description, or ""."""
    started = time.monotonic()
    while load.read().get("phase") != "running":
        if load.proc.poll() is not None or server.poll() is not None or time.monotonic() - started > 120:
            return "the load did not start (signing up, following, connecting)\n" + load.tail()
        time.sleep(0.1)
    warmup = min(settings.warmup_s, settings.duration_s / 2)
    interval = min(settings.interval_s, max(1.0, (settings.duration_s - warmup) / 6))
    ticks = {round(i * interval, 3) for i in range(int(settings.duration_s / interval) + 1)}
    schedule = sorted(ticks | {warmup, settings.duration_s})
    t0 = time.monotonic()
    for at in schedule:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        if server.poll() is not None:
            return f"the server exited ({server.returncode}) {at:.0f} s into the run"
        if load.proc.poll() is not None:
            return f"the load process exited ({load.proc.returncode}) {at:.0f} s into the run"
        now = sample(server.pid, at)
        stats = load.read() | {"backlog": backlog(data / "events.db")}
        result.samples += now
        result.loads.append((at, stats))
        progress(result.deployment, at, warmup, now, stats)
    return ""


def progress(deployment: str, at: float, warmup: float, now: list[Sample], stats: dict[str, Any]) -> None:
    phase = "warm-up" if at < warmup else "soak"
    procs = "  ".join(f"{s.process} {s.rss_mb:.1f} MB/{s.fds} fd" for s in now)
    load = (
        f"{stats.get('requests', 0)} req, {stats.get('errors', 0)} err, {stats.get('status_5xx', 0)} 5xx, "
        f"{stats.get('ws_messages', 0)} ws msg, {stats.get('ws_reconnects', 0)} reconnects, "
        f"{stats['backlog']} events unhandled"
    )
    print(f"[{deployment} {at:6.0f} s {phase}] {procs} | {load}", file=sys.stderr, flush=True)


# -- the report ---------------------------------------------------------------------------


@dataclass
class Verdict:
    process: str
    line: str
    flat: bool
    replaced: bool


def judge(result: Soak, settings: Settings) -> list[Verdict]:
    warmup = min(settings.warmup_s, settings.duration_s / 2)
    end = max((s.t_s for s in result.samples), default=0.0)
    out = []
    for name in dict.fromkeys(s.process for s in result.samples):
        judged = [s for s in result.samples if s.process == name and s.t_s >= warmup]
        if len(judged) < 2:
            out.append(Verdict(name, f"{name:<16} (too few samples after warm-up)", True, False))
            continue
        first, last = judged[0], judged[-1]
        grew = last.rss_mb - first.rss_mb
        pct = 100 * grew / first.rss_mb if first.rss_mb else float("nan")
        slope = slope_per_min([(s.t_s, s.rss_mb) for s in judged])
        fd_growth = last.fds - first.fds
        replaced = len({s.pid for s in judged}) > 1 or last.t_s < end  # or gone
        flat = slope < settings.max_slope and fd_growth <= settings.max_fd_growth
        verdict = "flat" if flat else "GROWING"
        if replaced:
            verdict += " (gone before the end)" if last.t_s < end else " (pid changed: replaced)"
        out.append(
            Verdict(
                name,
                f"{name:<16}{last.pid:>8}{first.rss_mb:>10.1f}{last.rss_mb:>9.1f}{grew:>+8.1f}{pct:>+7.1f}%"
                f"{slope:>+9.2f}{first.fds:>9}{last.fds:>8}{fd_growth:>+6}"
                f"{first.threads:>10}{last.threads:>9}  {verdict}",
                flat,
                replaced,
            )
        )
    return out


def load_line(result: Soak, settings: Settings) -> tuple[list[str], int, int]:
    """Lines about the load; its 5xx and no-response counts."""
    final, nan = result.final, float("nan")
    warmup = min(settings.warmup_s, settings.duration_s / 2)
    at_warm = next((stats for at, stats in result.loads if at >= warmup), {})
    at_end = result.loads[-1][1] if result.loads else {}
    measured_s = settings.duration_s - warmup
    done = at_end.get("requests", 0) - at_warm.get("requests", 0)
    rate = done / measured_s if measured_s > 0 else float("nan")
    status = ", ".join(f"{code}: {n}" for code, n in final.get("status", {}).items())
    lines = [
        f"load: {final.get('requests', 0)} requests "
        f"({rate:.0f} req/s after warm-up, target {settings.rate:g}), "
        f"{final.get('errors', 0)} errors ({final.get('status_5xx', 0)} 5xx, {final.get('failed', 0)} "
        f"without a response); p50 {final.get('p50_ms', nan):.1f} ms, p99 {final.get('p99_ms', nan):.1f} ms",
        f"  statuses: {status or 'none'}",
        f"  {final.get('sets', 0)} sets logged, {final.get('finished', 0)} workouts finished, "
        f"{final.get('refreshes', 0)} token refreshes",
        f"  p50/p99 ms by request, slowest first: {final.get('p50_p99_ms', {})}",
        f"  WebSockets: {final.get('ws_open_at_stop', 0)} of {settings.users} open at the end, "
        f"{final.get('ws_messages', 0)} messages {final.get('ws_types', {})}, "
        f"{final.get('ws_reconnects', 0)} reconnects {final.get('ws_drops') or ''}",
    ]
    lines.append(
        f"  events the consumers had yet to handle: {at_warm.get('backlog', '?')} at warm-up end, "
        f"{at_end.get('backlog', '?')} at the end; data on disk at the end: {result.data_mb:.0f} MB"
    )
    lines += [f"  error: {e}" for e in final.get("error_samples", [])]
    return lines, int(final.get("status_5xx", 0)), int(final.get("failed", 0))


def report(result: Soak, settings: Settings) -> bool:
    """Print the deployment's table; whether it passes."""
    warmup = min(settings.warmup_s, settings.duration_s / 2)
    print(
        f"\n== {result.deployment}: {settings.minutes:g} min of mixed load, {settings.users} users; "
        f"the first {warmup:.0f} s are warm-up (not judged): growth is warm-up end -> end"
    )
    if not result.loads:  # it never ran
        print(f"FAILED: {result.failure}\n{result.deployment}: FAIL")
        return False
    verdicts = judge(result, settings)
    head = f"{'process':<16}{'pid':>8}{'RSS warm':>10}{'RSS end':>9}{'+MB':>8}{'+%':>8}{'MB/min':>9}"
    print(head + f"{'fd warm':>9}{'fd end':>8}{'+fd':>6}{'thr warm':>10}{'thr end':>9}  verdict")
    print(f"{'':<24}(RSS in MB; MB/min: least-squares slope of RSS from warm-up end on)")
    for v in verdicts:
        print(v.line)
    lines, server_errors, no_response = load_line(result, settings)
    print("\n".join(lines))
    ok = all(v.flat and not v.replaced for v in verdicts) and not server_errors and not no_response
    if result.failure:
        print(f"FAILED: {result.failure}")
        ok = False
    print(f"{result.deployment}: {'PASS' if ok else 'FAIL'}")
    return ok


def write_csv(path: Path, results: list[Soak]) -> None:
    columns = ["deployment", "t_s", "process", "pid", "rss_mb", "fds", "threads", "requests", "errors"]
    columns += ["status_5xx", "failed", "status", "ws_messages", "ws_reconnects", "ws_open", "backlog"]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for result in results:
            loads = dict(result.loads)
            for s in result.samples:
                stats = loads.get(s.t_s, {})
                status = " ".join(f"{code}:{n}" for code, n in stats.get("status", {}).items())
                writer.writerow(
                    [result.deployment, s.t_s, s.process, s.pid, round(s.rss_mb, 2), s.fds, s.threads,
                     stats.get("requests", 0), stats.get("errors", 0), stats.get("status_5xx", 0),
                     stats.get("failed", 0), status, stats.get("ws_messages", 0),
                     stats.get("ws_reconnects", 0), stats.get("ws_open", 0), stats.get("backlog", "")]
                )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each run, warm-up included")
    parser.add_argument("--deployment", choices=("single", "split", "both"), default="both")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="not judged; at most half the run")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rate", type=float, default=150.0, help="requests per second, all users")
    parser.add_argument("--max-slope", type=float, default=1.0, help="flat: RSS slope below this, MB/min")
    parser.add_argument("--max-fd-growth", type=int, default=10, help="flat: open files grew by at most this")
    parser.add_argument("--csv", type=Path, help="write every sample here")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    if args.minutes <= 0 or args.users < 1 or args.rate <= 0:
        parser.error("--minutes, --users and --rate must be positive")
    settings = Settings(
        args.minutes, max(0.0, args.warmup_s), max(0.5, args.interval), args.users, args.rate,
        args.max_slope, args.max_fd_growth, args.keep,
    )  # fmt: skip
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C: the finally blocks stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[Soak] = []
    passed = True
    crashed = False
    for deployment in ("single", "split") if args.deployment == "both" else (args.deployment,):
        try:
            result = soak(deployment, settings)
        except RuntimeError as exc:  # a process that did not start
            result = Soak(deployment, failure=str(exc))
        crashed |= bool(result.failure)
        passed &= report(result, settings)
        results.append(result)
    print(
        f"\nrule: flat = RSS slope < {settings.max_slope:g} MB/min (least squares over the samples from "
        f"warm-up end on) and open files grown by <= {settings.max_fd_growth}; otherwise growing "
        "(threads: reported, not judged). "
        f"Load and servers share this machine's {os.cpu_count()} cores."
    )
    if args.csv:
        write_csv(args.csv, results)
        print(f"samples: {args.csv}")
    return 2 if crashed else 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
