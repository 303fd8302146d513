"""Token verification shared by every plug-in, and signing for the plug-in that issues them.

Access tokens are JWTs signed with Ed25519 (``alg: EdDSA``). Any process can verify them with
the public key alone; only the issuer (the users plug-in) needs the private key. A token can
be revoked before it expires: the revocation is applied locally at once and published as an
``auth.token_revoked`` event, which every process tails into its own deny-list.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fittracker.errors import Forbidden, Unauthorized
from fittracker.ids import random_hex

if TYPE_CHECKING:
    from fittracker.bus import EventBus
    from fittracker.config import Settings

REVOKED_EVENT = "auth.token_revoked"
_CACHE_SIZE = 10_000
log = logging.getLogger("fittracker.auth")


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: who they are, their role, and which token/session they used."""

    user_id: str
    role: str
    jti: str
    sid: str
    exp: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    exp: int
    expires_in: int


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` exclusively (two processes racing: one wins, the other reads it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


def load_keys(settings: Settings) -> tuple[Ed25519PrivateKey | None, Ed25519PublicKey]:
    """The key pair from config, or from ``<data_dir>/keys`` (created on first start)."""
    section = settings.section("auth")
    private_file, public_file = section["private_key_file"], section["public_key_file"]
    if private_file or public_file:
        private = None
        if private_file:
            loaded = serialization.load_pem_private_key(Path(private_file).read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{private_file}: not an Ed25519 private key")
            private = loaded
        if not public_file:
            assert private is not None
            return private, private.public_key()
        public = serialization.load_pem_public_key(Path(public_file).read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{public_file}: not an Ed25519 public key")
        return private, public

    key_dir = settings.data_dir / "keys"
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = key_dir / "ed25519.pem"
    if not key_path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if _write_new(key_path, pem, 0o600):
            pub = fresh.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            (key_dir / "ed25519.pub.pem").write_bytes(pub)
            log.info("created a new Ed25519 signing key", extra={"path": str(key_path)})
    for _ in range(50):  # another process may still be writing the file it just created
        raw = key_path.read_bytes()
        if raw:
            break
        time.sleep(0.01)
    private_key = serialization.load_pem_private_key(raw, password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(f"{key_path}: not an Ed25519 private key")
    return private_key, private_key.public_key()


class Auth:
    """Verifies (and, with the private key, issues) access tokens; keeps the deny-list."""

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        private_key: Ed25519PrivateKey | None = None,
        *,
        issuer: str = "fittracker",
        access_ttl_s: int = 900,
    ) -> None:
        self._public = public_key
        self._private = private_key
        self.issuer = issuer
        self.access_ttl_s = access_ttl_s
        self._revoked: dict[str, int] = {}  # jti -> exp; forgotten once the token expires anyway
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._bus: EventBus | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Auth:
        private, public = load_keys(settings)
        section = settings.section("auth")
        return cls(public, private, issuer=section["issuer"], access_ttl_s=section["access_ttl_s"])

    # issuing ---------------------------------------------------------------------------------
    def issue(self, user_id: str, role: str, sid: str, extra: dict[str, Any] | None = None) -> IssuedToken:
        """Sign a new access token for ``user_id`` in session ``sid``."""
        if self._private is None:
            raise RuntimeError("this process has no private key: it can verify tokens but not issue them")
        now = int(time.time())
        jti = random_hex()
        claims = {
            **(extra or {}),
            "iss": self.issuer,
            "sub": user_id,
            "role": role,
            "sid": sid,
            "jti": jti,
            "iat": now,
            "exp": now + self.access_ttl_s,
            "typ": "access",
        }
        token = jwt.encode(claims, self._private, algorithm="EdDSA")
        return IssuedToken(token=token, jti=jti, exp=claims["exp"], expires_in=self.access_ttl_s)

    # verifying -------------------------------------------------------------------------------
    def verify(self, token: str) -> Principal:
        """The principal of a valid, unexpired, unrevoked token; Unauthorized otherwise."""
        now = time.time()
        cached = self._cache.get(token)
        if cached is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=["EdDSA"],
                    issuer=self.issuer,
                    options={"require": ["exp", "iat", "sub", "jti", "sid"]},
                )
            except jwt.ExpiredSignatureError:
                raise Unauthorized("the access token has expired") from None
            except jwt.PyJWTError:
                raise Unauthorized("the access token is invalid") from None
            if claims.get("typ") != "access":
                raise Unauthorized("not an access token")
            cached = Principal(
                user_id=str(claims["sub"]),
                role=str(claims.get("role", "user")),
                jti=str(claims["jti"]),
                sid=str(claims["sid"]),
                exp=int(claims["exp"]),
            )
            self._cache[token] = cached
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        if cached.exp <= now:
            self._cache.pop(token, None)
            raise Unauthorized("the access token has expired")
        if cached.jti in self._revoked:
            raise Unauthorized("the access token has been revoked")
        return cached

    # revoking --------------------------------------------------------------------------------
    def attach_bus(self, bus: EventBus) -> None:
        self._bus = bus

    def _forget(self, jti: str, exp: int) -> None:
        now = int(time.time())
        self._revoked[jti] = exp
        if len(self._revoked) % 256 == 0:  # prune now and then; expired tokens fail anyway
            self._revoked = {j: e for j, e in self._revoked.items() if e > now}

    async def revoke(self, jti: str, exp: int) -> None:
        """Refuse this token from now on, in this process at once and in every other soon."""
        self._forget(jti, exp)
        if self._bus is not None:
            await self._bus.publish(REVOKED_EVENT, {"jti": jti, "exp": exp}, source="fittracker/core")

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    async def follow_revocations(self) -> None:
        """Tail revocations from other processes (run as a background task)."""
        assert self._bus is not None
        since = datetime.now(UTC) - timedelta(seconds=self.access_ttl_s + 60)
        async for event in self._bus.tail({REVOKED_EVENT}, since):
            try:
                self._forget(str(event.data["jti"]), int(event.data["exp"]))
            except (KeyError, TypeError, ValueError):
                log.warning("ignored a malformed %s event %s", REVOKED_EVENT, event.id)


# --- request helpers ---------------------------------------------------------------------------

AUTH = web.AppKey("fittracker.auth", Auth)
PRINCIPAL = web.RequestKey("fittracker.principal", Principal)
AUTH_ERROR = web.RequestKey("fittracker.auth_error", Unauthorized)


def bearer_token(request: web.BaseRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def optional_user(request: web.Request) -> Principal | None:
    """The caller if a valid token came with the request; None if no token came."""
    error = request.get(AUTH_ERROR)
    if error is not None:
        raise error
    return request.get(PRINCIPAL)


def require_user(request: web.Request) -> Principal:
    """The caller; 401 problem if there is no valid token."""
    principal = optional_user(request)
    if principal is None:
        raise Unauthorized("this endpoint needs a bearer access token")
    return principal


def require_admin(request: web.Request) -> Principal:
    """The caller, who must be an admin; 401 without a token, 403 with a user's."""
    principal = require_user(request)
    if not principal.is_admin:
        raise Forbidden("this endpoint is for admins")
    return principal
