"""Which ready upstream serves the next request: round robin or least-outstanding.

Both strategies only choose among the candidates the caller passes (the pool's ready
upstreams, minus the ones a retry already tried), so ejection and draining stay the pool's
and the prober's business.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, get_args

from fittracker.router.pool import Upstream

Strategy = Literal["round_robin", "least_outstanding"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


class Balancer:
    """Picks an upstream; one instance per plug-in (its counter is the round-robin cursor)."""

    def __init__(self, strategy: Strategy = "round_robin") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown balance strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        self.strategy: Strategy = strategy
        self._counter = 0

    def pick(self, candidates: Sequence[Upstream], exclude: Collection[str] = ()) -> Upstream | None:
        """The upstream for the next attempt, or None when no candidate is left.

        ``exclude`` holds the ids already tried for this request, so a retry lands elsewhere.
        """
        choices = [u for u in candidates if u.id not in exclude] if exclude else list(candidates)
        if not choices:
            return None
        if self.strategy == "least_outstanding":
            fewest = min(u.in_flight for u in choices)
            choices = [u for u in choices if u.in_flight == fewest]
        # One shared cursor: ties among the least busy rotate too, so an idle pool is not
        # hammered on its first member.
        chosen = choices[self._counter % len(choices)]
        self._counter = (self._counter + 1) % 1_000_000_007
        return chosen
