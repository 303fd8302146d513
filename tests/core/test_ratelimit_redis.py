"""Rate-limit counters in a real Redis: shared between routers, windows, outages, wiring.

Two ``RedisCounterStore`` instances (or two whole applications) on one Redis stand in for
two routers on different hosts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from fittracker.http.ratelimit import MemoryCounterStore, RateLimiter
from fittracker.http.ratelimit_redis import RedisCounterStore
from fittracker.runtime import RUNTIME
from tests.conftest import MakeClient
from tests.redis_server import RedisServer


@pytest.fixture
async def stores(redis_url: str, redis_prefix: str) -> AsyncIterator[list[RedisCounterStore]]:
    """Two stores ("routers") on the shared Redis, under a prefix of this test's own."""
    made = [RedisCounterStore(redis_url, prefix=redis_prefix) for _ in range(2)]
    yield made
    for store in made:
        await store.close()


async def test_two_stores_share_one_count(stores: list[RedisCounterStore]) -> None:
    one, two = stores
    results = [await (one if n % 2 else two).hit("client-1", 60) for n in range(6)]
    assert [hits for hits, _ in results] == [1, 2, 3, 4, 5, 6]
    ends = {end for _, end in results}
    assert len(ends) == 1  # one window, whichever router counted
    (end,) = ends
    assert end % 60 == 0 and time.time() < end <= time.time() + 60
    assert await one.hit("client-2", 60) == (1, end)  # another client counts apart


async def test_two_routers_enforce_one_limit(stores: list[RedisCounterStore]) -> None:
    limiters = [RateLimiter(s, window_s=60, global_limit=3, plugin_limit=100) for s in stores]
    verdicts = [(await limiters[n % 2].check("10.0.0.7", None))[0] for n in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0, 0]


async def test_the_window_resets_and_its_key_expires(
    stores: list[RedisCounterStore], redis_url: str, redis_prefix: str
) -> None:
    store = stores[0]
    hits, end = await store.hit("c", 1)
    if end - time.time() < 0.2:  # too close to the edge to test within one window
        await asyncio.sleep(end - time.time() + 0.01)
        hits, end = await store.hit("c", 1)
    assert hits == 1
    assert (await store.hit("c", 1)) == (2, end)
    client = aioredis.Redis.from_url(redis_url)
    try:
        ttl = await client.ttl(f"{redis_prefix}c:{int(end) - 1}")
        assert 0 < ttl <= 2  # the window's key does not outlive it by much
    finally:
        await client.aclose()
    await asyncio.sleep(end - time.time() + 0.01)
    assert await store.hit("c", 1) == (1, end + 1)


async def test_a_redis_outage_falls_back_to_local_counts_and_recovers(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = MemoryCounterStore()
    store = RedisCounterStore(private_redis.url, fallback=fallback, retry_interval=0.1)
    other_router = RedisCounterStore(private_redis.url)
    try:
        assert (await store.hit("k", 60))[0] == 1
        assert (await other_router.hit("k", 60))[0] == 2
        with caplog.at_level(logging.INFO, logger="fittracker.ratelimit"):
            private_redis.stop()
            local = [(await store.hit("k", 60))[0] for _ in range(3)]
            assert local == [1, 2, 3]  # answered by the fallback, from zero
            degraded = [store.degraded]
            private_redis.start()  # empty again: no persistence
            await asyncio.sleep(0.15)  # the retry interval
            assert (await store.hit("k", 60))[0] == 1
            degraded.append(store.degraded)
            assert degraded == [True, False]
            assert (await other_router.hit("k", 60))[0] == 2  # shared again
        messages = [r.getMessage() for r in caplog.records if r.name == "fittracker.ratelimit"]
        assert sum("unreachable" in m for m in messages) == 1  # once per outage, not per request
        assert sum("reachable again" in m for m in messages) == 1
    finally:
        await store.close()
        await other_router.close()


async def test_a_given_client_is_used_and_left_open(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisCounterStore(client, prefix=redis_prefix)
    try:
        assert (await store.hit("x", 10))[0] == 1
        await store.close()
        assert await client.ping()
        with pytest.raises(ValueError, match="window_s"):
            await store.hit("x", 0)
    finally:
        await client.aclose()


def redis_config(url: str, **ratelimit: Any) -> dict[str, dict[str, Any]]:
    return {
        "ratelimit": {"enabled": True, "backend": "redis", "redis_url": url, **ratelimit},
        "bus": {"backend": "redis", "redis_url": url},
        "cache": {"backend": "redis", "redis_url": url},
    }


async def test_two_applications_share_limits_bus_and_cache(
    make_client: MakeClient, private_redis: RedisServer
) -> None:
    config = redis_config(private_redis.url, global_limit=3)
    routers = [await make_client(plugins=["users"], config=config) for _ in range(2)]
    statuses = []
    for n in range(5):
        resp = await routers[n % 2].get("/api/v1/openapi.json")
        statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429, 429]

    first, second = (r.app[RUNTIME] for r in routers)
    await first.cache.set("users:probe", b"hello", 5)
    assert await second.cache.get("users:probe") == b"hello"
    # A token revoked on one router is refused by the other: the revocation travels on the
    # Redis event stream that every application tails.
    await first.auth.revoke("jti-123", int(time.time()) + 600)
    deadline = time.monotonic() + 5
    while not second.auth.is_revoked("jti-123"):
        assert time.monotonic() < deadline, "the revocation did not reach the other router"
        await asyncio.sleep(0.02)
