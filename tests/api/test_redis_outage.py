"""Redis stopped mid-run and started again, with every Redis backend on, in both deployments.

The service keeps answering while Redis is down: rate limits count locally, the cache misses,
and events wait in the bus's outbox on local disk. When Redis returns (empty: the test server
has no persistence) the events flow, and every set logged during the outage has its record
notification in the inbox. Nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import MakeClient
from tests.deployments import DELIVERY, live_client, start_split_server
from tests.helpers import auth, register
from tests.redis_server import RedisServer

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
INBOX = "/api/v1/notifications?limit=100"


def redis_settings(url: str) -> dict[str, dict[str, Any]]:
    return {
        "bus": {"backend": "redis", "redis_url": url},
        "cache": {"backend": "redis", "redis_url": url},
        "ratelimit": {"enabled": True, "backend": "redis", "redis_url": url, "global_limit": 100_000},
    }


@pytest.fixture(params=["single", "split"])
async def redis_api(
    request: pytest.FixtureRequest, make_client: MakeClient, private_redis: RedisServer, tmp_path: Path
) -> AsyncIterator[Any]:
    settings = redis_settings(private_redis.url)
    if request.param == "single":
        fast = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
        settings |= {"users": fast, "notifications": dict(DELIVERY)}
        yield await make_client(plugins=["users", "workouts", "notifications", "ai"], config=settings)
        return
    env = {
        f"FITTRACKER__{section.upper()}__{key.upper()}": str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for section, values in settings.items()
        for key, value in values.items()
    }
    server = start_split_server(tmp_path, env)
    try:
        async with live_client(server) as client:
            yield client
    finally:
        server.stop()


async def record_weights(api: Any, token: str) -> set[float]:
    items = (await (await api.get(INBOX, headers=auth(token))).json())["items"]
    return {
        float(n["data"]["value"])
        for n in items
        if n["type"] == "achievement.record" and n["data"].get("record_type") == "heaviest_weight"
    }


async def test_a_redis_outage_loses_nothing(redis_api: Any, private_redis: RedisServer) -> None:
    api = redis_api
    user = await register(api)
    token = user["access_token"]
    workout = await (await api.post("/api/v1/workouts", json={}, headers=auth(token))).json()
    sets = f"/api/v1/workouts/{workout['id']}/sets"

    async def log_set(weight: float) -> aiohttp.ClientResponse:
        body = {"exercise_id": BENCH, "reps": 5, "weight_kg": weight}
        resp: aiohttp.ClientResponse = await api.post(sets, json=body, headers=auth(token))
        return resp

    assert (await log_set(50.0)).status == 201
    await wait_for(lambda: record_weights(api, token), {50.0})

    private_redis.stop()
    during = [60.0, 70.0, 80.0]
    for weight in during:
        resp = await log_set(weight)
        assert resp.status == 201, await resp.text()
        assert "RateLimit-Limit" in resp.headers  # counted locally meanwhile
    search = await api.get("/api/v1/exercises?muscle=chest&limit=5", headers=auth(token))
    assert search.status == 200  # reads do not need Redis (the cache just misses)
    assert await record_weights(api, token) == {50.0}  # the events wait: not delivered, not lost

    private_redis.start()
    assert (await log_set(90.0)).status == 201
    await wait_for(lambda: record_weights(api, token), {50.0, *during, 90.0}, within=30)
    stored = await (await api.get(f"/api/v1/workouts/{workout['id']}", headers=auth(token))).json()
    assert [s["weight_kg"] for s in stored["sets"]] == [50.0, *during, 90.0]


async def wait_for(read: Any, expected: set[float], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (got := await read()) != expected:
        assert time.monotonic() < deadline, f"got {sorted(got)}, expected {sorted(expected)}"
        await asyncio.sleep(0.1)
