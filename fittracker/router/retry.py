"""A retry budget: retries may add at most ``ratio`` extra load, plus a small floor.

Retrying each failed request a couple of times is harmless when one worker hiccups and
ruinous when the whole plug-in is struggling: every retry is more load on what is already
failing. The budget caps retries to ``ratio`` x the requests seen in a sliding window, plus
``min_per_s`` per second of window so a quiet router can still retry at all.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

Clock = Callable[[], float]


class RetryBudget:
    def __init__(
        self,
        ratio: float = 0.2,
        *,
        min_per_s: float = 1.0,
        window_s: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if ratio < 0 or min_per_s < 0:
            raise ValueError("retry budget ratio and min_per_s must not be negative")
        if window_s <= 0:
            raise ValueError("retry budget window_s must be positive")
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.window_s = window_s
        self._clock = clock
        # One bucket per whole second: [second, requests, retries]. At most window_s + 1
        # buckets live at once, whatever the traffic.
        self._buckets: deque[list[int]] = deque()
        self._requests = 0
        self._retries = 0

    def record_request(self) -> None:
        """Count one original request (not its retries)."""
        self._bucket()[1] += 1
        self._requests += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        bucket = self._bucket()
        if self._retries + 1 > self.allowance():
            return False
        bucket[2] += 1
        self._retries += 1
        return True

    def allowance(self) -> float:
        """Retries the current window allows in total (spent ones included)."""
        self._expire()
        return self.ratio * self._requests + self.min_per_s * self.window_s

    def describe(self) -> dict[str, Any]:
        allowance = self.allowance()
        return {
            "window_s": self.window_s,
            "requests": self._requests,
            "retries": self._retries,
            "remaining": max(0, math.floor(allowance - self._retries)),
        }

    def _bucket(self) -> list[int]:
        self._expire()
        second = int(self._clock())
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def _expire(self) -> None:
        oldest = int(self._clock()) - math.ceil(self.window_s)
        while self._buckets and self._buckets[0][0] <= oldest:
            _, requests, retries = self._buckets.popleft()
            self._requests -= requests
            self._retries -= retries
