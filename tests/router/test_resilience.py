"""Failures through the proxy: retries, ejection and re-admission, breaker, 502/503/504."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse

from fittracker.router import PluginProxy, Upstream, UpstreamPool
from tests.router.conftest import Front, MakeProxy, StartUpstream
from tests.router.harness import pool_of


async def problem(resp: ClientResponse, status: int) -> dict[str, Any]:
    """Check a router problem answer and return its body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    assert body["detail"]
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


async def eventually(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.02)


async def wait_for_state(upstream: Upstream, state: str) -> None:
    await eventually(lambda: upstream.state == state, f"{upstream.id} {upstream.state} -> {state}")


def member(proxy: PluginProxy, upstream_id: str) -> Upstream:
    found = proxy.pool.get(upstream_id)
    assert found is not None
    return found


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_get_and_post_retried_on_another_upstream_when_connect_is_refused(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front, unix: bool
) -> None:
    down = await start_upstream("down", unix=unix, started=False)
    up = await start_upstream("up")
    proxy = await make_proxy(pool_of(down, up), eject_after=100)
    client = await front(proxy)
    for _ in range(3):
        resp = await client.get("/echo")
        assert resp.status == 200
        assert resp.headers["X-Upstream"] == "up"
    # A POST whose connection was refused never left the router: safe to send elsewhere,
    # and its body (not yet read) goes along intact.
    payload = os.urandom(100_000)
    for _ in range(2):
        resp = await client.post("/echo", data=payload)
        assert resp.status == 200
        assert (await resp.json())["body_len"] == len(payload)

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 30_000):
            yield payload[start : start + 30_000]

    for _ in range(2):  # a chunked upload, too, waits unread until a connection exists
        resp = await client.post("/upload", data=chunked())
        assert (await resp.json())["body_len"] == len(payload)
    assert member(proxy, "down").consecutive_failures >= 3
    assert member(proxy, "down").last_error
    assert all(u.in_flight == 0 for u in proxy.pool.all())


async def test_request_that_reached_a_dying_upstream_is_never_resent(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a"), await start_upstream("b")
    client = await front(await make_proxy(pool_of(a, b), eject_after=100))
    body = await problem(await client.post("/die", json={"x": 1}), 502)
    assert "closed the connection" in body["detail"]
    assert body["type"].endswith("/bad-gateway")
    died = [s for s in (a, b) if ("POST", "/die") in s.seen.requests]
    assert len(died) == 1  # the other upstream never saw it
    # By default not even a GET is re-sent once it may have been received.
    await problem(await client.get("/die"), 502)
    assert sum(s.seen.requests.count(("GET", "/die")) for s in (a, b)) == 1


async def test_safe_requests_may_be_resent_when_allowed(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a"), await start_upstream("b")
    client = await front(await make_proxy(pool_of(a, b), eject_after=100, retry_idempotent_sent=True))
    await problem(await client.get("/die"), 502)
    assert a.seen.requests.count(("GET", "/die")) == b.seen.requests.count(("GET", "/die")) == 1
    await problem(await client.post("/die"), 502)
    assert sum(s.seen.requests.count(("POST", "/die")) for s in (a, b)) == 1


async def test_passive_ejection_and_readmission_only_after_a_passing_probe(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    flaky, steady = await start_upstream("flaky", started=False), await start_upstream("steady")
    proxy = await make_proxy(pool_of(flaky, steady), eject_after=2)
    client = await front(proxy)
    for _ in range(4):
        assert (await client.get("/echo")).status == 200
    upstream = member(proxy, "flaky")
    assert upstream.state == "ejected"

    # Back up but failing its health check: stays out of rotation, probe after probe.
    flaky.seen.healthy = False
    await flaky.start()
    await asyncio.sleep(0.5)
    assert upstream.state == "ejected"
    assert ("GET", "/health") in flaky.seen.requests
    served = {(await client.get("/echo")).headers["X-Upstream"] for _ in range(4)}
    assert served == {"steady"}

    flaky.seen.healthy = True
    await wait_for_state(upstream, "ready")
    assert upstream.consecutive_failures == 0
    served = {(await client.get("/echo")).headers["X-Upstream"] for _ in range(4)}
    assert served == {"flaky", "steady"}
    assert ("GET", "/echo") not in flaky.seen.requests[: flaky.seen.requests.index(("GET", "/health"))]


async def test_all_upstreams_down_gives_502_then_503_with_retry_after(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    d1, d2 = await start_upstream("d1", started=False), await start_upstream("d2", unix=True, started=False)
    proxy = await make_proxy(pool_of(d1, d2), eject_after=1, probe_interval_s=1.5)
    client = await front(proxy)
    body = await problem(await client.get("/echo", headers={"X-Request-ID": "req-0000abcd"}), 502)
    assert body["request_id"] == "req-0000abcd"
    assert "could not connect" in body["detail"]
    assert {u.state for u in proxy.pool.all()} == {"ejected"}

    resp = await client.get("/echo")
    body = await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) >= 1
    assert "demo" in body["detail"]


async def test_empty_pool_answers_503(make_proxy: MakeProxy, front: Front) -> None:
    client = await front(await make_proxy(UpstreamPool("demo")))
    resp = await client.get("/anything")
    body = await problem(resp, 503)
    assert body["type"].endswith("/upstream-unavailable")
    assert resp.headers["Retry-After"] == "1"


async def test_breaker_opens_answers_fast_then_half_opens(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a = await start_upstream("a", started=False)
    proxy = await make_proxy(
        pool_of(a), eject_after=1000, max_retries=0, breaker_failures=3, breaker_cooldown_s=0.8
    )
    client = await front(proxy)
    for _ in range(3):
        await problem(await client.get("/echo"), 502)
    assert proxy.breaker.describe()["state"] == "open"
    await a.start()
    resp = await client.get("/echo")
    body = await problem(resp, 503)
    assert body["type"].endswith("/circuit-open")
    assert resp.headers["Retry-After"] == "1"
    assert ("GET", "/echo") not in a.seen.requests  # open means nothing is sent

    await asyncio.sleep(0.85)
    assert proxy.breaker.describe()["state"] == "half_open"
    assert (await client.get("/echo")).status == 200  # the trial passes ...
    assert proxy.breaker.describe()["state"] == "closed"  # ... and closes the circuit
    assert (await client.get("/echo")).status == 200


async def test_slow_upstream_gives_504_without_retry(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a"), await start_upstream("b")
    client = await front(await make_proxy(pool_of(a, b), read_timeout_s=0.3))
    started = time.monotonic()
    body = await problem(await client.get("/slow?s=3"), 504)
    assert time.monotonic() - started < 2
    assert body["type"].endswith("/gateway-timeout")
    assert sum(s.seen.requests.count(("GET", "/slow")) for s in (a, b)) == 1


async def test_no_retry_once_the_budget_is_spent(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    down, up = await start_upstream("down", started=False), await start_upstream("up")
    proxy = await make_proxy(pool_of(down, up), eject_after=100, retry_budget=0.0, retry_min_per_s=0.0)
    client = await front(proxy)
    await problem(await client.get("/echo"), 502)  # round robin hit "down" first; no retry allowed
    assert ("GET", "/echo") not in up.seen.requests
    assert (await client.get("/echo")).status == 200
    assert proxy.describe()["retry_budget"]["retries"] == 0


async def test_max_retries_bounds_the_attempts(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    downs = [await start_upstream(f"d{i}", started=False) for i in range(3)]
    proxy = await make_proxy(pool_of(*downs), eject_after=100, max_retries=1, probe_interval_s=30)
    client = await front(proxy)
    await problem(await client.get("/echo"), 502)
    # One attempt plus one retry, never a third.
    assert sum(u.consecutive_failures for u in proxy.pool.all()) == 2


async def test_upstream_dying_mid_body_truncates_the_response(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a = await start_upstream("a")
    proxy = await make_proxy(pool_of(a), eject_after=100)
    client = await front(proxy)
    resp = await client.get("/stream?size=10000000&cut=1")
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    assert member(proxy, "a").last_error
    assert (await client.get("/echo")).status == 200  # the router is fine


async def test_active_probes_eject_a_hung_upstream_and_serve_the_supervisor(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a", unix=True), await start_upstream("b")
    proxy = await make_proxy(pool_of(a, b), eject_after=2)
    client = await front(proxy)
    assert (await client.get("/echo")).status == 200
    assert proxy.sessions.unix_sessions == 1
    # No traffic at all, yet a worker failing its health checks leaves the rotation.
    a.seen.healthy = False
    await wait_for_state(member(proxy, "a"), "ejected")
    # The supervisor's readiness check for a fresh worker: probe() without state changes.
    fresh = b.upstream(state="starting")
    assert await proxy.probe(fresh)
    assert fresh.state == "starting"
    assert not await proxy.probe(member(proxy, "a"))
    # A worker that left the pool takes its socket's session with it.
    proxy.pool.remove("a")
    await eventually(lambda: proxy.sessions.unix_sessions == 0, "the socket's session is closed")
