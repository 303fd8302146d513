"""The router's policies on their own: balancer, circuit breaker, retry budget, headers."""

from __future__ import annotations

from collections import Counter

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy

from fittracker import internal_auth
from fittracker.router.balancer import Balancer
from fittracker.router.breaker import CircuitBreaker
from fittracker.router.headers import forward_request_headers, response_headers
from fittracker.router.pool import Upstream
from fittracker.router.retry import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upstreams(*in_flight: int) -> list[Upstream]:
    return [Upstream(id=f"u{i}", plugin="demo", url="http://x", in_flight=n) for i, n in enumerate(in_flight)]


def test_round_robin_visits_every_upstream_in_turn() -> None:
    balancer, pool = Balancer(), upstreams(0, 0, 0)
    picks = [balancer.pick(pool) for _ in range(9)]
    assert [u.id for u in picks if u] == ["u0", "u1", "u2"] * 3


def test_round_robin_skips_excluded_and_returns_none_when_all_tried() -> None:
    balancer, pool = Balancer(), upstreams(0, 0)
    chosen = [balancer.pick(pool, exclude={"u0"}) for _ in range(4)]
    assert {u.id for u in chosen if u} == {"u1"}
    assert balancer.pick(pool, exclude={"u0", "u1"}) is None
    assert balancer.pick([]) is None


def test_least_outstanding_prefers_the_idlest_and_rotates_ties() -> None:
    balancer = Balancer("least_outstanding")
    pool = upstreams(3, 1, 1, 5)
    counts = Counter(u.id for u in (balancer.pick(pool) for _ in range(10)) if u)
    assert counts == {"u1": 5, "u2": 5}


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="round_robin"):
        Balancer("random")  # type: ignore[arg-type]


def test_breaker_opens_after_consecutive_failures_then_half_opens_for_one_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=5, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success resets the streak
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.describe()["state"] == "open"
    assert not breaker.allow()
    assert breaker.retry_after_s() == 5
    clock.now += 5
    assert breaker.describe()["state"] == "half_open"
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one at a time
    breaker.failure()
    assert breaker.describe()["state"] == "open"  # a failed trial re-opens for a whole cool-down
    clock.now += 5
    assert breaker.allow()
    breaker.success()
    assert breaker.describe()["state"] == "closed"
    assert breaker.allow()


def test_breaker_trial_without_verdict_is_released() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=1, clock=clock)
    breaker.failure()
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_breaker_opened_by_an_empty_pool_closes_when_an_upstream_returns() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=5, cooldown_s=30, clock=clock)
    breaker.trip()
    assert not breaker.allow()
    breaker.pool_recovered()
    # Closed, not half-open: concurrent requests all go to the fresh upstream (split-mode
    # chaos test: with one trial at a time, the others got 503 from a ready worker).
    assert breaker.describe()["state"] == "closed"
    assert breaker.allow() and breaker.allow()
    # Also when the cool-down had passed and a trial found the pool still empty.
    breaker.trip()
    clock.now += 30
    assert breaker.allow()
    breaker.trip()
    breaker.pool_recovered()
    assert breaker.allow() and breaker.allow()
    # A circuit opened by failures waits out its cool-down whatever the pool does.
    for _ in range(5):
        breaker.failure()
    breaker.pool_recovered()
    assert not breaker.allow()


def test_retry_budget_allows_ratio_of_requests_plus_a_floor() -> None:
    clock = Clock()
    budget = RetryBudget(0.2, min_per_s=0.5, window_s=4, clock=clock)
    # Floor: 0.5/s x 4 s = 2 retries with no traffic at all.
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    for _ in range(10):
        budget.record_request()
    # 10 requests x 0.2 = 2 more.
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    clock.now += 5  # the window slid past all of it
    assert budget.describe()["requests"] == 0
    assert budget.try_spend()


def test_retry_budget_of_zero_never_retries() -> None:
    budget = RetryBudget(0.0, min_per_s=0.0)
    for _ in range(100):
        budget.record_request()
    assert not budget.try_spend()


def test_forwarded_headers_drop_hop_by_hop_and_add_forwarding_and_signature() -> None:
    request = make_mocked_request(
        "POST",
        "/api/v1/x?a=1",
        headers=CIMultiDict(
            {
                "Host": "fit.example",
                "Connection": "keep-alive, X-Custom-Hop",
                "X-Custom-Hop": "1",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Transfer-Encoding": "chunked",
                "Upgrade": "h2c",
                "Proxy-Authorization": "Basic xyz",
                "X-Forwarded-For": "203.0.113.9",
                "X-FitTracker-Internal": "forged",
                "Authorization": "Bearer t",
            }
        ),
    )
    headers = forward_request_headers(request, "/api/v1/x?a=1", "req-12345678", "s3cret")
    for dropped in ("Host", "Connection", "X-Custom-Hop", "Keep-Alive", "TE", "Transfer-Encoding", "Upgrade"):
        assert dropped not in headers
    assert "Proxy-Authorization" not in headers
    assert headers["Authorization"] == "Bearer t"
    assert headers["X-Request-ID"] == "req-12345678"
    assert headers["X-Forwarded-Host"] == "fit.example"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-For"].split(",")[0] == "203.0.113.9"  # the peer is appended
    assert internal_auth.verify(
        "s3cret", headers["X-FitTracker-Internal"], "POST", "/api/v1/x?a=1", "req-12345678"
    )
    unsigned = forward_request_headers(request, "/api/v1/x?a=1", "req-12345678", None)
    assert "X-FitTracker-Internal" not in unsigned  # a client's forged header never passes


def test_response_headers_keep_duplicates_and_drop_hop_by_hop() -> None:
    upstream = CIMultiDict(
        [
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "10"),
            ("Connection", "close"),
        ]
    )

    kept = response_headers(CIMultiDictProxy(upstream), keep_length=False)
    assert kept.getall("Set-Cookie") == ["a=1", "b=2"]
    assert "Transfer-Encoding" not in kept
    assert "Connection" not in kept
    assert "Content-Length" not in kept
    assert response_headers(CIMultiDictProxy(upstream), keep_length=True)["Content-Length"] == "10"
