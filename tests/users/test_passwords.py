"""Passwords: argon2id in the database, re-hashed when parameters change, never logged."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fittracker_plugins.users.passwords import Passwords

from tests.conftest import MakeClient
from tests.helpers import auth, register
from tests.users.conftest import users_config

Client = TestClient[Any, Any]
SECRET = "Tr0ub4dor&3-unique-secret"


def stored_hash(db_file: Path, email: str) -> str:
    """The password hash of ``email``, read straight from the SQLite file (table ``users``)."""
    with sqlite3.connect(db_file) as conn:
        for (raw,) in conn.execute('SELECT doc FROM "users"'):
            doc = json.loads(raw)
            if doc.get("email") == email:
                return str(doc["password_hash"])
    raise AssertionError(f"no stored hash for {email}")


def db_text(db_file: Path) -> str:
    with sqlite3.connect(db_file) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(
            " ".join(str(v) for v in row)
            for table in tables
            for row in conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608
        )


async def test_passwords_are_argon2id_hashes(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    client = await make_client(plugins=["users"], config=users_config(), data_dir=data_dir)
    await register(client, email="hash@example.com", password=SECRET)
    hashed = stored_hash(data_dir / "users.db", "hash@example.com")
    assert hashed.startswith("$argon2id$")
    assert SECRET not in db_text(data_dir / "users.db")


async def test_default_parameters_are_strong() -> None:
    passwords = Passwords()
    hashed = await passwords.hash(SECRET)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await passwords.verify(hashed, SECRET)
    assert not await passwords.verify(hashed, SECRET + "x")
    assert not await passwords.verify("not a hash", SECRET)
    assert not passwords.needs_rehash(hashed)
    assert Passwords(time_cost=4).needs_rehash(hashed)
    await passwords.verify_dummy(SECRET)  # never raises


async def test_rehash_on_login_when_parameters_change(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    weak = await make_client(plugins=["users"], config=users_config(), data_dir=data_dir)
    await register(weak, email="re@example.com", password=SECRET)
    before = stored_hash(data_dir / "users.db", "re@example.com")
    assert "t=1" in before
    await weak.close()

    stronger = await make_client(
        plugins=["users"], config=users_config(argon2_time_cost=2, argon2_memory_kib=2048), data_dir=data_dir
    )
    resp = await stronger.post("/api/v1/auth/login", json={"email": "re@example.com", "password": SECRET})
    assert resp.status == 200
    after = stored_hash(data_dir / "users.db", "re@example.com")
    assert after != before and "m=2048,t=2" in after
    # and the new hash still verifies
    resp = await stronger.post("/api/v1/auth/login", json={"email": "re@example.com", "password": SECRET})
    assert resp.status == 200
    assert stored_hash(data_dir / "users.db", "re@example.com") == after


async def test_unknown_email_still_runs_a_verify(
    users_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = Passwords.verify_sync

    def spy(self: Passwords, hashed: str, password: str) -> bool:
        calls.append(hashed)
        return original(self, hashed, password)

    monkeypatch.setattr(Passwords, "verify_sync", spy)
    resp = await users_client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": SECRET}
    )
    assert resp.status == 401
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


async def test_secrets_never_reach_the_logs(users_client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reg = await register(users_client, email="quiet@example.com", password=SECRET)
    bad = await users_client.post(
        "/api/v1/auth/login", json={"email": "quiet@example.com", "password": "wrong" + SECRET}
    )
    assert bad.status == 401
    good = await users_client.post(
        "/api/v1/auth/login", json={"email": "quiet@example.com", "password": SECRET}
    )
    tokens = await good.json()
    await users_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await users_client.post("/api/v1/auth/logout", headers=auth(reg["access_token"]))
    assert caplog.records, "expected some log lines (access log at least)"
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert SECRET not in text
    for token in (reg["access_token"], reg["refresh_token"], tokens["access_token"], tokens["refresh_token"]):
        assert token not in text
