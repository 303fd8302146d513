"""The cache port: the in-process LRU, and Redis (a real server) shared between processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from fittracker.cache import MemoryCache, open_cache
from fittracker.cache_redis import RedisCache
from tests.redis_server import RedisServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- MemoryCache -------------------------------------------------------------------------------


async def test_memory_cache_get_set_delete() -> None:
    cache = MemoryCache()
    assert await cache.get("k") is None
    await cache.set("k", b"v1", 60)
    assert await cache.get("k") == b"v1"
    await cache.set("k", b"v2", 60)
    assert await cache.get("k") == b"v2"
    await cache.delete("k")
    await cache.delete("k")  # absent: no error
    assert await cache.get("k") is None
    with pytest.raises(ValueError, match="ttl_s must be positive"):
        await cache.set("k", b"v", 0)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(0)


async def test_memory_cache_entries_expire() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("short", b"s", 1)
    await cache.set("long", b"l", 10)
    clock.now += 1
    assert await cache.get("short") is None
    assert await cache.get("long") == b"l"
    assert len(cache) == 1  # an expired entry is dropped when seen


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(3)
    for key in "abc":
        await cache.set(key, key.encode(), 60)
    assert await cache.get("a") == b"a"  # "a" is now the most recently used
    await cache.set("d", b"d", 60)
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    assert len(cache) == 3


async def test_memory_cache_evicts_expired_entries_before_live_ones() -> None:
    clock = FakeClock()
    cache = MemoryCache(2, clock=clock)
    await cache.set("live", b"1", 60)
    await cache.set("brief", b"2", 1)
    clock.now += 2
    await cache.set("new", b"3", 60)
    assert await cache.get("live") == b"1"
    assert await cache.get("new") == b"3"


# --- RedisCache --------------------------------------------------------------------------------


@pytest.fixture
async def two_caches(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[RedisCache, RedisCache]]:
    """Two caches ("processes") on the shared Redis, under a prefix of this test's own."""
    one, two = RedisCache(redis_url, prefix=redis_prefix), RedisCache(redis_url, prefix=redis_prefix)
    yield one, two
    await one.close()
    await two.close()


async def test_redis_cache_is_shared_between_instances(two_caches: tuple[RedisCache, RedisCache]) -> None:
    one, two = two_caches
    assert await two.get("profile:u1") is None
    await one.set("profile:u1", b"\x00binary\xff", 60)
    assert await two.get("profile:u1") == b"\x00binary\xff"
    await two.delete("profile:u1")
    assert await one.get("profile:u1") is None


async def test_redis_cache_entries_expire(two_caches: tuple[RedisCache, RedisCache]) -> None:
    one, two = two_caches
    await one.set("k", b"v", 0.1)
    assert await two.get("k") == b"v"
    await asyncio.sleep(0.2)
    assert await two.get("k") is None


async def test_redis_cache_prefixes_keep_caches_apart(redis_url: str, redis_prefix: str) -> None:
    mine = RedisCache(redis_url, prefix=f"{redis_prefix}a:")
    theirs = RedisCache(redis_url, prefix=f"{redis_prefix}b:")
    try:
        await mine.set("k", b"mine", 60)
        assert await theirs.get("k") is None
    finally:
        await mine.close()
        await theirs.close()


async def test_redis_cache_outage_means_misses_not_errors(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(private_redis.url, retry_interval=0.05)
    try:
        await cache.set("k", b"v", 60)
        with caplog.at_level(logging.WARNING, logger="fittracker.cache"):
            private_redis.stop()
            assert await cache.get("k") is None
            await cache.set("k", b"v", 60)
            await cache.delete("k")
            assert await cache.get("k") is None
            private_redis.start()
            await asyncio.sleep(0.06)
            await cache.set("k", b"back", 60)
            assert await cache.get("k") == b"back"
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1
    finally:
        await cache.close()


async def test_open_cache(redis_url: str) -> None:
    memory = open_cache("memory", max_entries=5)
    assert isinstance(memory, MemoryCache) and memory.max_entries == 5
    shared = open_cache("redis", redis_url=redis_url)
    assert isinstance(shared, RedisCache)
    await shared.close()
    with pytest.raises(ValueError, match="needs a redis_url"):
        open_cache("redis")
    with pytest.raises(ValueError, match="valid backends: memory, redis"):
        open_cache("memcached")
