"""When to restart a worker: exponential backoff and a crash-loop guard (pure, no I/O)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class RestartPolicy:
    """Remembers recent crashes of one worker slot and says how long to wait before the next try.

    The delay doubles with every crash still inside the window (0.5, 1, 2, … up to
    ``backoff_max_s``), so a worker that has been healthy for a whole window starts again at
    the initial delay. More than ``crash_loop_limit`` crashes inside the window trips the
    guard: the slot rests for ``cooldown_s`` instead of hammering the machine.
    """

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    window_s: float = 60.0
    crash_loop_limit: int = 5
    cooldown_s: float = 300.0
    _crashes: deque[float] = field(default_factory=deque)

    def _forget_old(self, now: float) -> None:
        while self._crashes and now - self._crashes[0] > self.window_s:
            self._crashes.popleft()

    def record_crash(self, now: float | None = None) -> None:
        current = time.monotonic() if now is None else now
        self._crashes.append(current)
        self._forget_old(current)

    def recent_crashes(self, now: float | None = None) -> int:
        self._forget_old(time.monotonic() if now is None else now)
        return len(self._crashes)

    def crash_looping(self, now: float | None = None) -> bool:
        return self.recent_crashes(now) > self.crash_loop_limit

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before starting the worker again."""
        count = self.recent_crashes(now)
        if count > self.crash_loop_limit:
            return self.cooldown_s
        if count == 0:
            return 0.0
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** (count - 1)))

    def reset(self) -> None:
        """Start afresh (after a cool-down): the next crash waits the initial delay again."""
        self._crashes.clear()
