"""The heap set-up for serving: start-up objects frozen, young collections made rarer."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from fittracker.runtime import YOUNG_COLLECTION_THRESHOLD, prepare_heap_for_serving
before = gc.get_threshold()
prepare_heap_for_serving()
after = gc.get_threshold()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
assert after == (YOUNG_COLLECTION_THRESHOLD, before[1], before[2]), (before, after)
assert gc.isenabled()
garbage = []
garbage.append(garbage)  # a cycle made after start-up is still collected
del garbage
assert gc.collect() >= 1
print("ok")
"""


def test_prepare_heap_for_serving() -> None:
    # In a process of its own: it changes the interpreter's collector for good.
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
