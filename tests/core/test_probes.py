"""The probe lane: ``GET /health`` answered in front of the app, exactly as the app answers it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from fittracker import system
from fittracker.http.probes import answer_probes_first
from fittracker.http.security import security_headers
from fittracker.metrics import RequestStats
from fittracker.runtime import RUNTIME
from tests.conftest import make_test_app


@pytest.fixture
async def urls(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(laned, plain): the same kind of app served with and without the lane."""
    runners = []
    found = []
    for name, lane in (("laned", True), ("plain", False)):
        app = make_test_app(tmp_path / name, plugins=["users"])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        if lane:
            stats = app[RUNTIME].metrics.http
            answer_probes_first(runner, system.liveness_body, security_headers(False), stats)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        found.append(f"http://{host}:{port}")
    yield found[0], found[1]
    for runner in runners:
        await runner.cleanup()


async def test_the_lane_answers_as_the_routed_handler_does(urls: tuple[str, str]) -> None:
    laned, plain = urls
    async with aiohttp.ClientSession() as session:
        answers = []
        for url in (laned, plain):
            async with session.get(url + "/health", headers={"X-Request-ID": "probe-12345"}) as resp:
                answers.append((resp.status, await resp.json(), resp.headers))
    (status, body, headers), (plain_status, plain_body, plain_headers) = answers
    assert status == plain_status == 200
    assert body.keys() == plain_body.keys() and body["status"] == "ok"
    assert body["version"] == plain_body["version"]
    for name in ("Content-Type", "X-Request-ID", *security_headers(False)):
        assert headers[name] == plain_headers[name], name


async def test_the_lane_makes_a_request_id_when_the_probe_sent_none_or_a_bad_one(
    urls: tuple[str, str],
) -> None:
    laned, _ = urls
    async with aiohttp.ClientSession() as session:
        seen = set()
        for sent in ({}, {"X-Request-ID": "bad id with spaces"}):
            async with session.get(laned + "/health", headers=sent) as resp:
                seen.add(resp.headers["X-Request-ID"])
    assert len(seen) == 2 and "bad id with spaces" not in seen


async def test_everything_else_still_goes_through_the_app(urls: tuple[str, str]) -> None:
    laned, _ = urls
    async with aiohttp.ClientSession() as session:
        async with session.post(laned + "/health") as resp:  # the app's 405, as a problem
            assert resp.status == 405
            assert resp.content_type == "application/problem+json"
        async with session.get(laned + "/health/services") as resp:
            assert resp.status == 200
            assert "services" in await resp.json()
        async with session.get(laned + "/api/v1/profiles/me") as resp:
            assert resp.status == 401
        async with session.get(laned + "/metrics") as resp:
            exposition = await resp.text()
    assert 'method="GET",plugin="core",route="/health/services",status="200"' in exposition
    assert 'method="POST"' in exposition and 'status="405"' in exposition


async def test_probes_are_counted_in_the_request_metrics(urls: tuple[str, str]) -> None:
    laned, _ = urls
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.get(laned + "/health") as resp:
                assert resp.status == 200
        async with session.get(laned + "/metrics") as resp:
            exposition = await resp.text()
    assert 'fittracker_http_requests_total{method="GET",plugin="core",route="/health",status="200"} 4.0' in (
        exposition
    )
    assert 'fittracker_http_request_duration_seconds_count{plugin="core",route="/health"} 4.0' in exposition


async def test_the_lane_needs_a_runner_that_is_set_up(tmp_path: Path) -> None:
    runner = web.AppRunner(make_test_app(tmp_path, plugins=["users"]))
    with pytest.raises(RuntimeError, match="set up"):
        answer_probes_first(runner, system.liveness_body, {}, RequestStats())
