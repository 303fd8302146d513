"""Failures through the proxy: retries, ejection and re-admission, breaker, 502/503/504."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse, RequestInfo
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from fittracker.router import PluginProxy, Upstream, UpstreamPool
from fittracker.router.failures import classify
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
    client = await front(await make_proxy(pool_of(a, b), eject_after=100, probe_interval_s=1.5))
    resp = await client.post("/die", json={"x": 1})
    body = await problem(resp, 503)
    # The worker went away: try again shortly, but the write may have happened.
    assert "went away before answering" in body["detail"]
    assert "may or may not have been applied" in body["detail"]
    assert body["type"].endswith("/upstream-unavailable")
    assert resp.headers["Retry-After"] == "2"
    died = [s for s in (a, b) if ("POST", "/die") in s.seen.requests]
    assert len(died) == 1  # the other upstream never saw it
    # By default not even a GET is re-sent once it may have been received.
    resp = await client.get("/die")
    body = await problem(resp, 503)
    assert "may or may not" not in body["detail"]  # a read changes nothing
    assert resp.headers["Retry-After"] == "2"
    assert sum(s.seen.requests.count(("GET", "/die")) for s in (a, b)) == 1


async def test_an_invalid_answer_is_502_and_not_resent(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a"), await start_upstream("b")
    client = await front(await make_proxy(pool_of(a, b), eject_after=100, retry_idempotent_sent=True))
    resp = await client.post("/garbage", json={})
    body = await problem(resp, 502)
    assert body["type"].endswith("/bad-gateway")
    assert "invalid response" in body["detail"]
    assert "may or may not have been applied" in body["detail"]
    assert "Retry-After" not in resp.headers
    assert sum(s.seen.requests.count(("POST", "/garbage")) for s in (a, b)) == 1


_KEY = ConnectionKey("worker", 80, False, True, None, None, None)
_INFO = RequestInfo(URL("http://worker/x"), "POST", CIMultiDictProxy(CIMultiDict()))


@pytest.mark.parametrize(
    ("exc", "status", "sent"),
    [
        pytest.param(
            aiohttp.ClientConnectorError(_KEY, ConnectionRefusedError(111, "refused")),
            503,
            False,
            id="refused",
        ),
        pytest.param(aiohttp.ConnectionTimeoutError("connect"), 504, False, id="connect-timeout"),
        pytest.param(aiohttp.ServerDisconnectedError(), 503, True, id="disconnected"),
        pytest.param(aiohttp.ClientOSError(104, "Connection reset by peer"), 503, True, id="reset"),
        pytest.param(aiohttp.ClientConnectionResetError("closing transport"), 503, True, id="reset-on-write"),
        pytest.param(ConnectionResetError(104, "Connection reset by peer"), 503, True, id="os-reset"),
        pytest.param(
            aiohttp.ClientPayloadError("Response payload is not completed: <ContentLengthError>"),
            503,
            True,
            id="body-cut-short",
        ),
        pytest.param(
            aiohttp.ClientPayloadError("400, message: Can not decode content-encoding: gzip"),
            502,
            True,
            id="body-undecodable",
        ),
        pytest.param(
            aiohttp.ClientResponseError(_INFO, (), status=400, message="Invalid status line"),
            502,
            True,
            id="invalid-response",
        ),
        pytest.param(aiohttp.SocketTimeoutError("read"), 504, True, id="read-timeout"),
    ],
)
def test_classify_a_worker_that_went_away_as_503(exc: BaseException, status: int, sent: bool) -> None:
    failure = classify(exc)
    assert (failure.status, failure.sent) == (status, sent), failure.reason
    assert ("went away" in failure.reason) == (status == 503)


async def test_safe_requests_may_be_resent_when_allowed(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a"), await start_upstream("b")
    client = await front(await make_proxy(pool_of(a, b), eject_after=100, retry_idempotent_sent=True))
    await problem(await client.get("/die"), 503)
    assert a.seen.requests.count(("GET", "/die")) == b.seen.requests.count(("GET", "/die")) == 1
    await problem(await client.post("/die"), 503)
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


async def test_all_upstreams_down_gives_503_with_retry_after(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    d1, d2 = await start_upstream("d1", started=False), await start_upstream("d2", unix=True, started=False)
    proxy = await make_proxy(pool_of(d1, d2), eject_after=1, probe_interval_s=1.5)
    client = await front(proxy)
    resp = await client.post("/echo", json={}, headers={"X-Request-ID": "req-0000abcd"})
    body = await problem(resp, 503)
    assert body["request_id"] == "req-0000abcd"
    assert "went away: could not connect" in body["detail"]
    assert "may or may not" not in body["detail"]  # refused: it never left the router
    assert resp.headers["Retry-After"] == "2"
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
    # Then the circuit is open, and says why: not "failing", just nothing ready.
    body = await problem(await client.get("/anything"), 503)
    assert body["type"].endswith("/circuit-open")
    assert body["detail"] == "no worker of the demo plug-in is ready"


async def test_a_fresh_worker_in_an_empty_pool_serves_concurrent_requests(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    # Split-mode chaos test: the only ai worker was replaced; while the first request to the
    # fresh one was in flight (a half-open trial), another read got 503 "circuit open".
    proxy = await make_proxy(UpstreamPool("demo"), breaker_cooldown_s=30)
    client = await front(proxy)
    await problem(await client.get("/echo"), 503)  # nothing ready: the circuit opens
    fresh = await start_upstream("fresh")
    proxy.pool.add(fresh.upstream())  # what the supervisor does once the worker is ready
    first = asyncio.create_task(client.get("/hold"))
    await eventually(lambda: ("GET", "/hold") in fresh.seen.requests, "the first request arrived")
    resp = await client.get("/echo")
    assert resp.status == 200, await resp.text()
    fresh.seen.release.set()
    assert (await first).status == 200


async def test_breaker_opens_answers_fast_then_half_opens(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a = await start_upstream("a", started=False)
    proxy = await make_proxy(
        pool_of(a), eject_after=1000, max_retries=0, breaker_failures=3, breaker_cooldown_s=0.8
    )
    client = await front(proxy)
    for _ in range(3):
        await problem(await client.get("/echo"), 503)
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


async def test_a_worker_dying_with_requests_in_flight_leaves_the_circuit_closed(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    # Split-mode chaos test: a workouts worker SIGKILLed with 5+ writes in flight opened the
    # plug-in's circuit, and reads its healthy sibling could serve got 503 for the cool-down.
    a, b = await start_upstream("a"), await start_upstream("b")
    proxy = await make_proxy(pool_of(a, b), balance="round_robin", breaker_failures=5, probe_interval_s=30)
    client = await front(proxy)
    held = [asyncio.create_task(client.post("/hold", json={})) for _ in range(12)]
    await eventually(lambda: len(a.seen.requests) == len(b.seen.requests) == 6, "6 writes held on each")
    await a.stop()  # dies with 6 writes in flight
    for resp in await asyncio.gather(*held[::2]):
        assert "may or may not have been applied" in (await problem(resp, 503))["detail"]
    assert member(proxy, "a").state == "ejected"  # the worker's own failures took it out
    assert proxy.breaker.describe()["state"] == "closed"
    resp = await client.get("/echo")
    assert resp.status == 200 and resp.headers["X-Upstream"] == "b"
    b.seen.release.set()
    assert {(await resp.json())["upstream"] for resp in await asyncio.gather(*held[1::2])} == {"b"}


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
    await problem(await client.get("/echo"), 503)  # round robin hit "down" first; no retry allowed
    assert ("GET", "/echo") not in up.seen.requests
    assert (await client.get("/echo")).status == 200
    assert proxy.describe()["retry_budget"]["retries"] == 0


async def test_max_retries_bounds_the_attempts(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    downs = [await start_upstream(f"d{i}", started=False) for i in range(3)]
    proxy = await make_proxy(pool_of(*downs), eject_after=100, max_retries=1, probe_interval_s=30)
    client = await front(proxy)
    await problem(await client.get("/echo"), 503)
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
