"""The fixture third-party plug-in, end to end: routes, storage, events, health, OpenAPI, CLI."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fittracker.runtime import RUNTIME
from tests.conftest import MakeClient
from tests.helpers import auth


async def notes_client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client(plugins=["notes"], config={"notes": {"max_notes": 3, "greeting": "hi"}})


def token_for(client: TestClient[Any, Any], user_id: str = "u1", role: str = "user") -> str:
    token: str = client.app[RUNTIME].auth.issue(user_id, role, sid="s1").token
    return token


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_routes_storage_and_events(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await notes_client(make_client)
    token = token_for(client)
    resp = await client.post("/api/v1/notes", json={"text": "squat day"}, headers=auth(token))
    assert resp.status == 201
    note = await resp.json()
    assert note["text"] == "squat day" and note["owner_id"] == "u1"

    resp = await client.get("/api/v1/notes", headers=auth(token))
    assert [n["id"] for n in (await resp.json())["items"]] == [note["id"]]

    async def handled() -> bool:
        body = await (await client.get("/api/v1/notes/stats")).json()
        return bool(body["handled"] == 1)

    await wait_for(handled)

    async def job_done() -> bool:
        body = await (await client.get("/api/v1/notes", headers=auth(token))).json()
        return bool(body["items"][0]["words"] == 2)

    await wait_for(job_done)  # the background job ran on ctx.jobs
    assert (await (await client.get("/api/v1/notes/stats")).json())["greeting"] == "hi"


async def test_plugin_settings_apply(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await notes_client(make_client)
    token = token_for(client)
    for i in range(3):
        assert (await client.post("/api/v1/notes", json={"text": f"n{i}"}, headers=auth(token))).status == 201
    resp = await client.post("/api/v1/notes", json={"text": "one too many"}, headers=auth(token))
    assert resp.status == 409


async def test_unauthenticated_and_invalid(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await notes_client(make_client)
    resp = await client.post("/api/v1/notes", json={"text": "x"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await client.post("/api/v1/notes", json={"text": ""}, headers=auth(token_for(client)))
    assert resp.status == 422
    body = await resp.json()
    assert body["errors"][0]["field"] == "text"


async def test_health_includes_plugin_checks(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await notes_client(make_client)
    resp = await client.get("/api/v1/notes/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["plugin"] == "notes" and body["version"] == "1.2.3"
    assert set(body["checks"]) == {"database", "bus", "notes_table"}
    services = await (await client.get("/health/services")).json()
    assert services["services"]["notes"]["mode"] == "inprocess"
    assert services["services"]["notes"]["checks"]["notes_table"]["status"] == "ok"


async def test_failing_health_check_reports_503(
    installed_test_plugins: Path, make_client: MakeClient
) -> None:
    client = await notes_client(make_client)
    ctx = client.app[RUNTIME].contexts["notes"]
    await ctx.db.close()  # the database is gone: its check must fail, not hang or crash
    resp = await client.get("/api/v1/notes/health")
    assert resp.status == 503
    body = await resp.json()
    assert body["checks"]["database"]["status"] == "error"
    assert (await client.get("/health/services")).status == 503


async def test_openapi_has_plugin_paths(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await notes_client(make_client)
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/notes" in spec["paths"] and "/api/v1/notes/health" in spec["paths"]
    assert "NoteIn" in spec["components"]["schemas"]


async def test_internal_service_client(installed_test_plugins: Path, make_client: MakeClient) -> None:
    client = await notes_client(make_client)
    resp = await client.get("/api/v1/notes/core-health", headers={"X-Request-ID": "trace-me-123"})
    assert await resp.json() == {"status": 200, "service": "fittracker"}


async def test_crash_is_a_problem_without_internals(
    installed_test_plugins: Path, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await notes_client(make_client)
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/api/v1/notes/boom", headers={"X-Request-ID": "crash-req-0001"})
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    text = await resp.text()
    assert "secret internals" not in text and "Traceback" not in text
    assert (await resp.json())["request_id"] == "crash-req-0001"
    logged = [r for r in caplog.records if r.exc_info and r.name == "fittracker.http"]
    assert logged and logged[0].request_id == "crash-req-0001"  # type: ignore[attr-defined]


def test_plugin_cli_command(installed_test_plugins: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(installed_test_plugins), str(Path(__file__).parents[1] / "plugins")]
        ),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fittracker",
            "notes",
            "count",
            "--owner",
            "nobody",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


async def test_extension_point_reaches_every_plugin(
    installed_test_plugins: Path, make_client: MakeClient
) -> None:
    """A built-in calls an extension point through ctx.hooks; the third party answers."""
    from fittracker.push import Device, PushMessage

    client = await notes_client(make_client)
    ctx = client.app[RUNTIME].contexts["notes"]
    providers = [p for answer in ctx.hooks.fittracker_push_providers(ctx=ctx) for p in answer]
    board = next(p for p in providers if p.platform == "noteboard")
    message = PushMessage(notification_id="n1", title="PR!", body="100 kg", category="achievements")
    assert (await board.send(Device("d1", "u1", "noteboard", "wall"), message)).outcome == "sent"
    assert (await board.send(Device("d2", "u1", "noteboard", "gone"), message)).outcome == "invalid_token"
    assert await ctx.db.collection("board").count({"to": "wall"}) == 1
