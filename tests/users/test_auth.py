"""Register, login (with throttling), refresh rotation and reuse detection, logout, me."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import MakeClient
from tests.helpers import auth, register
from tests.users.conftest import EventRecorder, users_config

PASSWORD = "correct horse battery"
Client = TestClient[Any, Any]


async def login(client: Client, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def refresh(client: Client, token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def me_status(client: Client, token: str) -> int:
    resp = await client.get("/api/v1/auth/me", headers=auth(token))
    return int(resp.status)


def database_bytes(data_dir: Path) -> bytes:
    """The raw bytes of users.db and its write-ahead log."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("users.db*")))


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


# --- register ---------------------------------------------------------------------------------


async def test_register_returns_user_and_tokens(users_client: Client, recorder: EventRecorder) -> None:
    body = await register(users_client, email="  Alice@Example.COM ", name="Alice Smith")
    user = body["user"]
    assert user["email"] == "alice@example.com"
    assert user["name"] == "Alice Smith"
    assert user["role"] == "user"
    assert len(user["id"]) == 32 and user["created_at"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]

    resp = await users_client.get("/api/v1/auth/me", headers=auth(body["access_token"]))
    assert resp.status == 200
    assert await resp.json() == user

    event = await recorder.wait_for("user.registered")
    assert event.data == {"user_id": user["id"], "email": "alice@example.com", "name": "Alice Smith"}
    assert event.subject == user["id"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "A"}, "email"),
        ({"email": "a@example.com", "password": "short", "name": "A"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129, "name": "A"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "   "}, "name"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "n" * 101}, "name"),
        ({"email": "a@example.com", "password": PASSWORD}, "name"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "A", "role": "admin"}, "role"),
    ],
)
async def test_register_validation(users_client: Client, payload: dict[str, Any], field: str) -> None:
    resp = await users_client.post("/api/v1/auth/register", json=payload)
    assert resp.status == 422
    body = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert field in error_fields(body)
    assert PASSWORD not in await resp.text()


async def test_register_configured_min_length(make_client: MakeClient) -> None:
    client = await make_client(plugins=["users"], config=users_config(password_min_length=12))
    resp = await client.post(
        "/api/v1/auth/register", json={"email": "a@example.com", "password": "elevenchars", "name": "A"}
    )
    assert resp.status == 422
    assert error_fields(await resp.json()) == {"password"}


async def test_register_duplicate_email_is_409(users_client: Client) -> None:
    await register(users_client, email="bob@example.com")
    resp = await users_client.post(
        "/api/v1/auth/register", json={"email": "BOB@example.com", "password": PASSWORD, "name": "Bob"}
    )
    assert resp.status == 409
    assert (await resp.json())["status"] == 409


async def test_concurrent_registrations_of_one_email(users_client: Client) -> None:
    payload = {"email": "race@example.com", "password": PASSWORD, "name": "Racer"}
    responses = await asyncio.gather(
        *(users_client.post("/api/v1/auth/register", json=payload) for _ in range(5))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 409, 409, 409, 409]


async def test_register_rejects_non_json(users_client: Client) -> None:
    resp = await users_client.post("/api/v1/auth/register", data="email=a@b.co")
    assert resp.status == 415


# --- login ------------------------------------------------------------------------------------


async def test_login_happy_path(users_client: Client) -> None:
    reg = await register(users_client, email="carol@example.com", name="Carol")
    resp = await login(users_client, " CAROL@example.com")
    assert resp.status == 200
    body = await resp.json()
    assert body["user"] == reg["user"]
    assert body["refresh_token"] != reg["refresh_token"]
    assert await me_status(users_client, body["access_token"]) == 200


async def test_wrong_password_and_unknown_email_look_the_same(users_client: Client) -> None:
    await register(users_client, email="dave@example.com")
    wrong = await login(users_client, "dave@example.com", "not the password")
    unknown = await login(users_client, "nobody@example.com", "not the password")
    assert wrong.status == unknown.status == 401
    wrong_body, unknown_body = await wrong.json(), await unknown.json()
    for body in (wrong_body, unknown_body):
        body.pop("request_id", None)
    assert wrong_body == unknown_body


async def test_login_throttled_after_five_failures(users_client: Client) -> None:
    await register(users_client, email="erin@example.com")
    for _ in range(5):
        assert (await login(users_client, "erin@example.com", "wrong password")).status == 401
    resp = await login(users_client, "erin@example.com")  # even the right password now
    assert resp.status == 429
    retry_after = int(resp.headers["Retry-After"])
    assert 0 < retry_after <= 900
    assert (await resp.json())["status"] == 429


async def test_unknown_email_is_throttled_too(users_client: Client) -> None:
    for _ in range(5):
        assert (await login(users_client, "ghost@example.com", "wrong password")).status == 401
    assert (await login(users_client, "ghost@example.com", "wrong password")).status == 429


async def test_success_clears_email_failures(users_client: Client) -> None:
    await register(users_client, email="frank@example.com")
    for _ in range(4):
        assert (await login(users_client, "frank@example.com", "wrong password")).status == 401
    assert (await login(users_client, "frank@example.com")).status == 200
    for _ in range(4):
        assert (await login(users_client, "frank@example.com", "wrong password")).status == 401
    assert (await login(users_client, "frank@example.com")).status == 200


async def test_throttle_window_expires(users_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    await register(users_client, email="gina@example.com")
    for _ in range(5):
        await login(users_client, "gina@example.com", "wrong password")
    assert (await login(users_client, "gina@example.com")).status == 429
    later = time.time() + 901
    monkeypatch.setattr("fittracker_plugins.users.throttle.time.time", lambda: later)
    assert (await login(users_client, "gina@example.com")).status == 200


async def test_login_throttled_per_client_address(make_client: MakeClient) -> None:
    client = await make_client(plugins=["users"], config=users_config(login_ip_max_failures=3))
    for i in range(3):
        assert (await login(client, f"someone{i}@example.com", "wrong password")).status == 401
    resp = await login(client, "another@example.com", "wrong password")
    assert resp.status == 429
    assert "Retry-After" in resp.headers


async def test_throttle_can_be_disabled(make_client: MakeClient) -> None:
    client = await make_client(plugins=["users"], config=users_config(login_throttle=False))
    for _ in range(7):
        assert (await login(client, "x@example.com", "wrong password")).status == 401


# --- refresh ----------------------------------------------------------------------------------


async def test_refresh_rotates_tokens(users_client: Client) -> None:
    reg = await register(users_client)
    resp = await refresh(users_client, reg["refresh_token"])
    assert resp.status == 200
    body = await resp.json()
    assert body["user"] == reg["user"]
    assert body["refresh_token"] != reg["refresh_token"]
    assert body["access_token"] != reg["access_token"]
    assert await me_status(users_client, body["access_token"]) == 200
    # and the new refresh token works once more
    assert (await refresh(users_client, body["refresh_token"])).status == 200


async def test_refresh_reuse_revokes_the_family(users_client: Client) -> None:
    reg = await register(users_client)
    first = await (await refresh(users_client, reg["refresh_token"])).json()

    reused = await refresh(users_client, reg["refresh_token"])
    assert reused.status == 401

    # the whole family is gone: the newest refresh token and the last access token
    assert (await refresh(users_client, first["refresh_token"])).status == 401
    assert await me_status(users_client, first["access_token"]) == 401


async def test_reuse_does_not_touch_other_sessions(users_client: Client) -> None:
    reg = await register(users_client, email="henry@example.com")
    other = await (await login(users_client, "henry@example.com")).json()
    await refresh(users_client, reg["refresh_token"])
    assert (await refresh(users_client, reg["refresh_token"])).status == 401
    assert await me_status(users_client, other["access_token"]) == 200
    assert (await refresh(users_client, other["refresh_token"])).status == 200


async def test_concurrent_refreshes_only_one_wins(users_client: Client) -> None:
    reg = await register(users_client)
    responses = await asyncio.gather(*(refresh(users_client, reg["refresh_token"]) for _ in range(4)))
    assert [r.status for r in responses].count(200) == 1
    assert all(r.status in (200, 401) for r in responses)


async def test_refresh_unknown_token(users_client: Client) -> None:
    assert (await refresh(users_client, "not-a-real-token")).status == 401
    resp = await users_client.post("/api/v1/auth/refresh", json={})
    assert resp.status == 422
    assert error_fields(await resp.json()) == {"refresh_token"}


async def test_refresh_token_expires(users_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = await register(users_client)
    later = time.time() + 31 * 86_400  # past the default refresh_ttl_s of 30 days
    monkeypatch.setattr("fittracker_plugins.users.sessions.time.time", lambda: later)
    resp = await refresh(users_client, reg["refresh_token"])
    assert resp.status == 401
    assert "expired" in (await resp.json())["detail"]


async def test_refresh_tokens_are_stored_hashed(users_client: Client, tmp_path: Path) -> None:
    reg = await register(users_client)
    blob = database_bytes(tmp_path / "data1")
    assert b"refresh_tokens" in blob  # the table is there (sanity check of the reader)
    assert reg["refresh_token"].encode() not in blob


# --- logout, me, bad tokens -----------------------------------------------------------------


async def test_logout_refuses_the_token_and_session(users_client: Client) -> None:
    reg = await register(users_client)
    resp = await users_client.post("/api/v1/auth/logout", headers=auth(reg["access_token"]))
    assert resp.status == 204
    assert await me_status(users_client, reg["access_token"]) == 401
    assert (await refresh(users_client, reg["refresh_token"])).status == 401


async def test_logout_keeps_other_sessions(users_client: Client) -> None:
    reg = await register(users_client, email="ivy@example.com")
    other = await (await login(users_client, "ivy@example.com")).json()
    await users_client.post("/api/v1/auth/logout", headers=auth(reg["access_token"]))
    assert await me_status(users_client, other["access_token"]) == 200


async def test_logout_needs_a_token(users_client: Client) -> None:
    assert (await users_client.post("/api/v1/auth/logout")).status == 401


async def test_me_without_or_with_bad_token(users_client: Client) -> None:
    assert (await users_client.get("/api/v1/auth/me")).status == 401
    assert await me_status(users_client, "garbage") == 401
    reg = await register(users_client)
    tampered = reg["access_token"][:-4] + ("AAAA" if not reg["access_token"].endswith("AAAA") else "BBBB")
    assert await me_status(users_client, tampered) == 401


async def test_expired_access_token_is_refused(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "expiry"
    client = await make_client(plugins=["users"], config=users_config(), data_dir=data_dir)
    reg = await register(client)
    claims = jwt.decode(reg["access_token"], options={"verify_signature": False})
    key = serialization.load_pem_private_key((data_dir / "keys" / "ed25519.pem").read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    now = int(time.time())
    expired = jwt.encode(
        {**claims, "jti": "expired-one", "iat": now - 1000, "exp": now - 10}, key, algorithm="EdDSA"
    )
    assert await me_status(client, expired) == 401
    # the same claims with a future expiry are accepted: the key and claims are right
    fresh = jwt.encode({**claims, "jti": "fresh-one", "iat": now, "exp": now + 60}, key, algorithm="EdDSA")
    assert await me_status(client, fresh) == 200


async def test_access_token_carries_role_and_session(users_client: Client) -> None:
    reg = await register(users_client)
    claims = jwt.decode(reg["access_token"], options={"verify_signature": False})
    assert claims["sub"] == reg["user"]["id"]
    assert claims["role"] == "user"
    rotated = await (await refresh(users_client, reg["refresh_token"])).json()
    assert jwt.decode(rotated["access_token"], options={"verify_signature": False})["sid"] == claims["sid"]
