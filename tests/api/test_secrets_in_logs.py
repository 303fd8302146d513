"""No password, token or Authorization header in the logs of a whole run, in both deployments.

A real server (and, in split mode, its workers) logs at DEBUG while a client goes through
everything that handles secrets: register, logins right and wrong, refresh, refresh reuse,
logout, revoked-token requests, a WebSocket with its token in the query string, bodies that
fail to parse, and requests through the router. Then the whole log is searched.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.deployments import SplitServer, start_single_server, start_split_server

DEBUG_LOGS = {"FITTRACKER__LOG__LEVEL": "DEBUG", "FITTRACKER__LOG__FORMAT": "json"}


async def secret_handling_session(base: str) -> list[str]:
    """Exercise every path that sees a secret; return the secrets it used."""
    password, wrong = f"pw-{uuid.uuid4().hex}", f"wrong-{uuid.uuid4().hex}"
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    seen: list[str] = [password, wrong]
    async with aiohttp.ClientSession() as s:
        body = {"email": email, "password": password, "name": "Log Reader"}
        async with s.post(f"{base}/api/v1/auth/register", json=body) as resp:
            assert resp.status == 201
            reg = await resp.json()
        for attempt in (wrong, password):
            async with s.post(
                f"{base}/api/v1/auth/login", json={"email": email, "password": attempt}
            ) as resp:
                assert resp.status in (200, 401)
                if resp.status == 200:
                    login = await resp.json()
        access, refresh = login["access_token"], login["refresh_token"]
        seen += [reg["access_token"], reg["refresh_token"], access, refresh]
        bearer = {"Authorization": f"Bearer {access}"}
        async with s.get(f"{base}/api/v1/auth/me", headers=bearer) as resp:
            assert resp.status == 200
        async with s.get(f"{base}/api/v1/no-such-thing", headers=bearer) as resp:
            assert resp.status == 404
        broken = b'{"email": "' + email.encode() + b'", "password": "' + password.encode()
        headers = {"Content-Type": "application/json"}
        async with s.post(f"{base}/api/v1/auth/login", data=broken, headers=headers) as resp:
            assert resp.status == 400
        async with s.ws_connect(f"{base}/api/v1/notifications/ws?access_token={access}") as ws:
            await ws.close()
        async with s.post(f"{base}/api/v1/auth/refresh", json={"refresh_token": refresh}) as resp:
            assert resp.status == 200
            rotated = await resp.json()
        seen += [rotated["access_token"], rotated["refresh_token"]]
        async with s.post(f"{base}/api/v1/auth/refresh", json={"refresh_token": refresh}) as resp:
            assert resp.status == 401  # reuse: the family is revoked
        async with s.post(f"{base}/api/v1/auth/logout", headers=bearer) as resp:
            assert resp.status in (204, 401)
        async with s.get(f"{base}/api/v1/workouts", headers=bearer) as resp:
            assert resp.status in (200, 401)  # revocation reaches the plug-in within moments
    return seen


@pytest.mark.parametrize("start", [start_single_server, start_split_server], ids=["single", "split"])
async def test_no_secret_reaches_the_logs(start: Callable[..., SplitServer], tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    server = start(tmp_path, DEBUG_LOGS, log_file)
    try:
        secrets = await secret_handling_session(server.url)
    finally:
        await asyncio.to_thread(server.stop)
    logs = log_file.read_text(encoding="utf-8")
    assert logs.count("fittracker.access") >= 10, logs[-2000:]  # the run was logged, at DEBUG
    for secret in secrets:
        assert secret not in logs
        if secret.count(".") == 2:  # a JWT: not even its signature
            assert secret.rsplit(".", 1)[1] not in logs
    assert "Bearer " not in logs
