"""A circuit breaker per plug-in: stop sending traffic to a plug-in that keeps failing.

closed     requests flow; ``failure_threshold`` consecutive failed requests (or a pool with
           no ready upstream) open the circuit. The proxy reports only failures of upstreams
           still in rotation: one worker failing on its own is ejected, not its plug-in cut off.
open       requests are answered at once (503 + Retry-After) for ``cooldown_s``.
half_open  after the cool-down one trial request goes through; its success closes the
           circuit, its failure opens it again for another cool-down.

A circuit opened only because the pool was empty closes as soon as an upstream is ready
again (``pool_recovered``): nothing failed, that upstream has just passed a health probe, and
waiting out the cool-down, or for one trial request, would just turn away traffic a fresh
worker could serve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

BreakerState = Literal["closed", "open", "half_open"]
Clock = Callable[[], float]


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 5.0,
        trial_timeout_s: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        # A trial whose outcome never arrives (a bug, a cancelled task) must not wedge the
        # circuit half-open forever: after this long another trial may go.
        self.trial_timeout_s = trial_timeout_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._empty_pool = False
        self._trial_started: float | None = None
        self.last_reason: str | None = None

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        """Whether a request may go now; a True in half-open state makes it THE trial.

        The caller must then report exactly one of :meth:`success`, :meth:`failure` or
        :meth:`release` for that request.
        """
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._trial_started is not None and now - self._trial_started < self.trial_timeout_s:
            return False  # one trial at a time
        self._state = "half_open"
        self._trial_started = now
        return True

    def success(self) -> None:
        self._failures = 0
        self._trial_started = None
        self._empty_pool = False
        self._state = "closed"

    def failure(self, reason: str = "upstream failure") -> None:
        self.last_reason = reason
        if self._state == "half_open":
            self._open(empty_pool=False)
            return
        self._failures += 1
        if self._state == "closed" and self._failures >= self.failure_threshold:
            self._open(empty_pool=False)

    def release(self) -> None:
        """The request ended without a verdict (e.g. the client went away): free the trial."""
        self._trial_started = None

    def trip(self, reason: str = "no ready upstream") -> None:
        """Open now: the pool has nothing ready to send to."""
        self.last_reason = reason
        if self._state != "open":
            self._open(empty_pool=True)

    def pool_recovered(self) -> None:
        """An upstream is ready again: close a circuit that only an empty pool opened."""
        if self._state != "closed" and self._empty_pool:
            self.success()

    @property
    def opened_for_an_empty_pool(self) -> bool:
        """True while open because no upstream was ready (not because requests failed)."""
        return self._state != "closed" and self._empty_pool

    def retry_after_s(self) -> int:
        """Whole seconds until a trial may go (at least 1), for the ``Retry-After`` header."""
        remaining = self.cooldown_s - (self._clock() - self._opened_at)
        return max(1, math.ceil(remaining))

    def describe(self) -> dict[str, Any]:
        return {"state": self.state, "consecutive_failures": self._failures, "last_reason": self.last_reason}

    def _open(self, *, empty_pool: bool) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._empty_pool = empty_pool
        self._trial_started = None
        self._failures = 0
