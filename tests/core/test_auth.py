"""Access tokens: Ed25519 signatures, expiry, revocation shared between processes, keys."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import stat
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fittracker.auth import Auth, load_keys
from fittracker.bus import SqliteEventBus
from fittracker.config import build_schema, load_settings
from fittracker.errors import Unauthorized


def settings_for(data_dir: Path, **auth: object) -> object:
    return load_settings(
        build_schema({}), environ={}, overrides={"server": {"data_dir": str(data_dir)}, "auth": dict(auth)}
    )


def test_keys_created_once_with_private_permissions(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    private, _public = load_keys(settings)  # type: ignore[arg-type]
    key_file = tmp_path / "keys" / "ed25519.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again_private, _ = load_keys(settings)  # type: ignore[arg-type]
    assert private is not None and again_private is not None
    assert private.private_bytes_raw() == again_private.private_bytes_raw()
    assert (tmp_path / "keys" / "ed25519.pub.pem").exists()


def test_token_round_trip_and_claims() -> None:
    key = Ed25519PrivateKey.generate()
    auth = Auth(key.public_key(), key, access_ttl_s=60)
    issued = auth.issue("user-1", "admin", sid="sess-1")
    principal = auth.verify(issued.token)
    assert (principal.user_id, principal.role, principal.sid, principal.jti) == (
        "user-1",
        "admin",
        "sess-1",
        issued.jti,
    )
    assert principal.is_admin
    header = jwt.get_unverified_header(issued.token)
    assert header["alg"] == "EdDSA"


def test_verify_with_public_key_only_and_no_issuing() -> None:
    key = Ed25519PrivateKey.generate()
    issuer = Auth(key.public_key(), key)
    verifier = Auth(key.public_key())
    assert verifier.verify(issuer.issue("u", "user", sid="s").token).user_id == "u"
    with pytest.raises(RuntimeError, match="private key"):
        verifier.issue("u", "user", sid="s")


def handmade(header: dict[str, str], claims: dict[str, object], sign: Callable[[bytes], bytes]) -> str:
    """A JWT assembled by hand, as an attacker would (libraries refuse to make these)."""
    head = base64url(json.dumps(header).encode())
    body = base64url(json.dumps(claims).encode())
    return f"{head}.{body}.{base64url(sign(f'{head}.{body}'.encode()))}"


def base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "case",
    ["other-key", "tampered", "expired", "refresh-typ", "garbage", "hs256", "alg-none", "hs256-public-key"],
)
def test_bad_tokens_are_refused(case: str) -> None:
    key = Ed25519PrivateKey.generate()
    auth = Auth(key.public_key(), key, access_ttl_s=60)
    now = int(time.time())
    claims = {
        "iss": "fittracker",
        "sub": "u",
        "sid": "s",
        "jti": "j",
        "iat": now,
        "exp": now + 60,
        "typ": "access",
    }
    if case == "other-key":
        token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    elif case == "tampered":
        good = auth.issue("u", "user", sid="s").token
        head, body, sig = good.split(".")
        token = f"{head}.{body[:-2]}AA.{sig}"
    elif case == "expired":
        token = jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, key, algorithm="EdDSA")
    elif case == "refresh-typ":
        token = jwt.encode({**claims, "typ": "refresh"}, key, algorithm="EdDSA")
    elif case == "hs256":  # algorithm confusion: an HMAC token must never be accepted
        token = jwt.encode(claims, "secret-secret-secret-secret-secret!", algorithm="HS256")
    elif case == "alg-none":  # unsigned
        token = handmade({"alg": "none", "typ": "JWT"}, claims, lambda _: b"")
    elif case == "hs256-public-key":  # HMAC keyed with the (public) verification key
        public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        token = handmade(
            {"alg": "HS256", "typ": "JWT"}, claims, lambda signed: hmac.new(public, signed, "sha256").digest()
        )
    else:
        token = "not-a-token"
    with pytest.raises(Unauthorized):
        auth.verify(token)


def test_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    auth = Auth(key.public_key(), key, access_ttl_s=60)
    token = auth.issue("u", "user", sid="s").token
    auth.verify(token)  # now cached
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    with pytest.raises(Unauthorized, match="expired"):
        auth.verify(token)


async def test_revocation_reaches_another_process(tmp_path: Path) -> None:
    """Two Auth objects on two buses over one event log behave like two worker processes."""
    key = Ed25519PrivateKey.generate()
    bus_a = SqliteEventBus(tmp_path, poll_interval=0.01)
    bus_b = SqliteEventBus(tmp_path, poll_interval=0.01)
    a, b = Auth(key.public_key(), key), Auth(key.public_key())
    a.attach_bus(bus_a)
    b.attach_bus(bus_b)
    await bus_a.start()
    await bus_b.start()
    follower = asyncio.create_task(b.follow_revocations())
    try:
        issued = a.issue("u", "user", sid="s")
        assert b.verify(issued.token).user_id == "u"
        await a.revoke(issued.jti, issued.exp)
        with pytest.raises(Unauthorized, match="revoked"):
            a.verify(issued.token)  # at once in the revoking process
        for _ in range(200):
            if b.is_revoked(issued.jti):
                break
            await asyncio.sleep(0.01)
        with pytest.raises(Unauthorized, match="revoked"):
            b.verify(issued.token)
    finally:
        follower.cancel()
        await bus_a.close()
        await bus_b.close()


async def test_revocations_survive_a_restart(tmp_path: Path) -> None:
    """A process that starts after a logout still refuses the revoked token."""
    key = Ed25519PrivateKey.generate()
    bus = SqliteEventBus(tmp_path, poll_interval=0.01)
    a = Auth(key.public_key(), key)
    a.attach_bus(bus)
    await bus.start()
    issued = a.issue("u", "user", sid="s")
    await a.revoke(issued.jti, issued.exp)
    await bus.close()

    later_bus = SqliteEventBus(tmp_path, poll_interval=0.01)
    later = Auth(key.public_key())
    later.attach_bus(later_bus)
    await later_bus.start()
    follower = asyncio.create_task(later.follow_revocations())
    try:
        for _ in range(200):
            if later.is_revoked(issued.jti):
                break
            await asyncio.sleep(0.01)
        assert later.is_revoked(issued.jti)
    finally:
        follower.cancel()
        await later_bus.close()
