"""What every ``make bench`` scenario shares: the result row, the table, wrk, and /proc readings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONNECTIONS = 64


@dataclass
class Row:
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float
    baseline: str = ""
    ratio: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_tool(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian ``package`` with apt-get when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"{binary} is missing: installing {package} with apt-get", file=sys.stderr)
    for command in ([*sudo, "apt-get", "update", "-qq"], [*sudo, "apt-get", "install", "-y", "-qq", package]):
        subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # noqa: S603
    return shutil.which(binary) or sys.exit(f"{binary} could not be installed")


def ensure_wrk() -> str:
    return ensure_tool("wrk", "wrk")


def _status_field(pid: int, name: str) -> str | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split()[1]
    return None


def rss_mb(pid: int) -> float:
    found = _status_field(pid, "VmRSS")
    return int(found) / 1024 if found is not None else float("nan")


def threads(pid: int) -> int:
    """Threads of ``pid`` (-1 when it is gone)."""
    try:
        found = _status_field(pid, "Threads")
    except OSError:
        return -1
    return int(found) if found is not None else -1


def open_files(pid: int) -> int:
    """Open file descriptors of ``pid`` (-1 when it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of already sorted samples (nearest rank); NaN when there are none."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(
    name: str, got: dict[str, Any], pid: int, baseline: dict[str, Any] | None = None, label: str = ""
) -> Row:
    out = Row(name, got["rps"], got["p50_ms"], got["p99_ms"], got["errors"], rss_mb(pid))
    if baseline is not None:
        out.baseline = f"{label} {baseline['rps']:.0f} req/s"
        out.ratio = f"{got['rps'] / baseline['rps']:.2f} x" if baseline["rps"] else ""
    return out


def print_table(rows: list[Row]) -> None:
    head = f"{'scenario':<30}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'RSS MB':>8}"
    print(head + "  baseline (same run)")
    for r in rows:
        rps = "" if r.rps != r.rps else f"{r.rps:.0f}"  # NaN: not a throughput scenario
        p99 = "" if r.p99_ms != r.p99_ms else f"{r.p99_ms:.2f}"
        cells = f"{r.scenario:<30}{rps:>9}{r.p50_ms:>9.2f}{p99:>9}{r.errors:>8}{r.rss_mb:>8.1f}"
        print(f"{cells}  {r.baseline} {r.ratio}")
        for key, value in r.extra.items():
            print(f"{'':<30}{key}: {value}")
    print(f"wrk, {CONNECTIONS} connections, load and server share this machine's {os.cpu_count()} cores")


def report(rows: list[Row], as_json: bool, note: str = "") -> None:
    """The rows as JSON, or as the table (and ``note`` under it)."""
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    print_table(rows)
    if note:
        print(note)
