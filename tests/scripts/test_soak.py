"""scripts/soak.py still runs: a few seconds of it on the single process, table and exit status.

The thresholds are opened wide: seconds of load say nothing about leaks (the real soak is ten
minutes, on demand); this only keeps the script from rotting.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_a_short_soak_prints_the_table_and_passes(tmp_path: Path) -> None:
    samples = tmp_path / "samples.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTRACKER")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--minutes", "0.05", "--deployment", "single",
         "--warmup-s", "1", "--users", "4", "--rate", "40", "--max-slope", "100000",
         "--max-fd-growth", "100000", "--csv", str(samples)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=55,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert "== single: 0.05 min of mixed load, 4 users; the first 1 s are warm-up" in out
    assert "RSS warm" in out and "MB/min" in out and "fd warm" in out
    server_row = next(line for line in out.splitlines() if line.startswith("server "))
    assert server_row.endswith("flat")
    assert "0 errors (0 5xx, 0 without a response)" in out
    assert "4 of 4 open at the end" in out
    assert "single: PASS" in out and "rule: flat = RSS slope <" in out
    assert "[single " in done.stderr  # the progress lines
    with samples.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["process"] for r in rows} == {"server"}
    assert int(rows[-1]["requests"]) > 0
