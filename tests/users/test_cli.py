"""``fittracker users create-admin``, run as a real subprocess against a data dir."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.conftest import MakeClient
from tests.helpers import register
from tests.users.conftest import FAST_HASHING, users_config

FITTRACKER = str(Path(sys.executable).with_name("fittracker"))
ADMIN_PASSWORD = "admin-secret-passphrase"


async def run_cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
    env = {
        **os.environ,
        "FITTRACKER_PLUGINS": "users",
        **{f"FITTRACKER__USERS__{k.upper()}": str(v) for k, v in FAST_HASHING.items()},
    }
    proc = await asyncio.create_subprocess_exec(
        FITTRACKER,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def login(client: Any, email: str, password: str) -> Any:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_create_admin(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    code, out, err = await run_cli(
        "users",
        "create-admin",
        "--email",
        "Root@Example.com",
        "--password",
        ADMIN_PASSWORD,
        "--data-dir",
        str(data_dir),
    )
    assert code == 0, err
    user_id = out.strip()
    assert len(user_id) == 32
    assert ADMIN_PASSWORD not in out + err

    client = await make_client(plugins=["users"], config=users_config(), data_dir=data_dir)
    resp = await login(client, "root@example.com", ADMIN_PASSWORD)
    assert resp.status == 200
    body = await resp.json()
    assert body["user"] == {**body["user"], "id": user_id, "role": "admin", "email": "root@example.com"}


async def test_create_admin_promotes_and_resets(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    client = await make_client(plugins=["users"], config=users_config(), data_dir=data_dir)
    reg = await register(client, email="boss@example.com")
    code, out, err = await run_cli(
        "users",
        "create-admin",
        "--email",
        "boss@example.com",
        "--data-dir",
        str(data_dir),
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert code == 0, err
    assert out.strip() == reg["user"]["id"]
    assert ADMIN_PASSWORD not in out + err

    assert (await login(client, "boss@example.com", "correct horse battery")).status == 401
    resp = await login(client, "boss@example.com", ADMIN_PASSWORD)
    assert resp.status == 200
    assert (await resp.json())["user"]["role"] == "admin"


async def test_create_admin_rejects_bad_input(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        "users",
        "create-admin",
        "--email",
        "not-an-email",
        "--password",
        "tiny-pw",
        "--data-dir",
        str(tmp_path / "d"),
    )
    assert code == 1
    assert "email" in err and "password" in err
    assert "tiny-pw" not in out + err
