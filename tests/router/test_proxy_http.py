"""HTTP through the proxy against real upstreams: bodies, streaming, headers, balancing."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from fittracker import internal_auth
from tests.router.conftest import Front, MakeProxy, StartUpstream
from tests.router.harness import pool_of


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_get_and_post_round_trip(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front, unix: bool
) -> None:
    server = await start_upstream("a", unix=unix)
    client = await front(await make_proxy(pool_of(server)))

    resp = await client.get("/echo/x%20y?q=a%20b&tag=1&tag=2", headers={"X-Custom": "kept"})
    assert resp.status == 200
    body = await resp.json()
    assert body["upstream"] == "a"
    assert body["path_qs"] == "/echo/x%20y?q=a%20b&tag=1&tag=2"  # byte for byte, not re-quoted
    assert body["query"]["q"] == "a b"
    assert body["headers"]["X-Custom"] == "kept"
    assert resp.headers["X-Upstream"] == "a"

    payload = os.urandom(50_000)
    resp = await client.post("/echo", data=payload, headers={"Content-Type": "application/x-test"})
    assert resp.status == 200
    body = await resp.json()
    assert body["method"] == "POST"
    assert body["body_len"] == len(payload)
    assert body["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert body["headers"]["Content-Type"] == "application/x-test"

    for method in ("PUT", "PATCH", "DELETE"):
        resp = await client.request(method, "/echo", json={"m": method})
        assert (await resp.json())["method"] == method


async def test_head_and_upstream_status_pass_through(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server)))
    resp = await client.head("/echo")
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) > 0
    assert await resp.read() == b""
    resp = await client.get("/nowhere")
    assert resp.status == 404  # the upstream's answer, not the router's


async def test_large_request_body_is_streamed(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server)))
    chunk = os.urandom(256 * 1024)
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        digest.update(chunk)
        yield chunk
        # The rest waits until the upstream has the first part: a buffering proxy would
        # deadlock here (and time out), a streaming one passes it on at once.
        await asyncio.wait_for(server.seen.upload_started.wait(), 5)
        for _ in range(31):
            digest.update(chunk)
            yield chunk

    resp = await client.post("/upload", data=body())
    assert resp.status == 200
    result = await resp.json()
    assert result["body_len"] == 32 * len(chunk)  # 8 MiB, sent chunked
    assert result["body_sha256"] == digest.hexdigest()


async def test_large_chunked_response_is_streamed(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server)))
    size = 6 * 1024 * 1024
    resp = await client.get(f"/stream?size={size}&wait=1")
    assert resp.status == 200
    assert "Content-Length" not in resp.headers
    # The upstream holds back everything after its first chunk until we read that chunk
    # through the proxy: only a streaming proxy gets it to us.
    first = await asyncio.wait_for(resp.content.readexactly(65536), 5)
    server.seen.first_chunk_read.set()
    rest = await resp.read()
    assert len(first) + len(rest) == size


async def test_request_id_forwarding_and_hop_by_hop_headers(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server), secret="s3cret"))
    resp = await client.get(
        "/echo?x=1",
        headers={
            "X-Request-ID": "req-abcdef123",
            "X-Forwarded-For": "198.51.100.7",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-FitTracker-Internal": "v1:1:forged",
        },
    )
    assert resp.status == 200
    seen = (await resp.json())["headers"]
    assert seen["X-Request-ID"] == "req-abcdef123"
    assert seen["X-Forwarded-For"] == "198.51.100.7, 127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == f"127.0.0.1:{client.port}"
    for dropped in ("X-Hop", "Keep-Alive", "TE", "Proxy-Authorization"):
        assert dropped not in seen
    assert seen["Host"] == server.url.removeprefix("http://")  # the upstream's own, not ours
    assert internal_auth.verify("s3cret", seen["X-FitTracker-Internal"], "GET", "/echo?x=1", "req-abcdef123")
    # Response side: hop-by-hop headers named by the upstream's Connection header stop too.
    assert "X-Secret-Hop" not in resp.headers
    assert resp.headers["X-Upstream"] == "a"

    resp = await client.get("/echo", headers={"X-Request-ID": "bad id!"})
    made = (await resp.json())["headers"]["X-Request-ID"]
    assert made != "bad id!" and len(made) >= 8  # an invalid id is replaced, not passed on


async def test_round_robin_spreads_requests_evenly(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    servers = [await start_upstream(n, unix=n == "c") for n in ("a", "b", "c")]
    client = await front(await make_proxy(pool_of(*servers)))
    counts: Counter[str] = Counter()
    for _ in range(12):
        resp = await client.get("/echo")
        counts[resp.headers["X-Upstream"]] += 1
    assert counts == {"a": 4, "b": 4, "c": 4}


async def test_least_outstanding_avoids_the_busy_upstream(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    a, b = await start_upstream("a"), await start_upstream("b")
    proxy = await make_proxy(pool_of(a, b), balance="least_outstanding")
    client = await front(proxy)
    busy = proxy.pool.get("a")
    assert busy is not None
    held = asyncio.create_task(client.get("/hold"))  # ties rotate: the first goes to "a"
    for _ in range(100):
        if busy.in_flight == 1:
            break
        await asyncio.sleep(0.01)
    assert busy.in_flight == 1
    served = [(await client.get("/echo")).headers["X-Upstream"] for _ in range(4)]
    assert served == ["b"] * 4
    a.seen.release.set()
    assert (await (await held).json())["upstream"] == "a"
    assert all(u.in_flight == 0 for u in proxy.pool.all())


async def test_compressed_bodies_go_upstream_decoded(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    """Our server decodes a gzip body, so it goes upstream decoded: without its coding and its
    encoded length (the upstream used to get plain bytes labelled gzip, and answer 500)."""
    server = await start_upstream("a")
    client = await front(await make_proxy(pool_of(server)))
    payload = b'{"text": "' + b"compressible " * 5000 + b'"}'
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await client.post("/echo", data=gzip.compress(payload), headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert "Content-Encoding" not in body["headers"]
    assert body["headers"].get("Content-Length", str(len(payload))) == str(len(payload))


async def test_an_undecodable_body_is_the_clients_fault(
    start_upstream: StartUpstream, make_proxy: MakeProxy, front: Front
) -> None:
    """A "gzip" body that is not gzip: a 400 problem, and nothing counts against the upstream
    (it used to be a 502 each time, so a handful of them opened the circuit for everybody)."""
    server = await start_upstream("a")
    proxy = await make_proxy(pool_of(server), breaker_failures=2, eject_after=2)
    client = await front(proxy)
    for _ in range(5):
        resp = await client.post("/echo", data=b"not gzip at all", headers={"Content-Encoding": "gzip"})
        assert resp.status == 400
        problem = await resp.json(content_type=None)
        assert problem["type"].endswith("/bad-request") and "cannot be read" in problem["detail"]
    assert proxy.breaker.describe()["state"] == "closed"
    assert (await client.get("/echo")).status == 200
