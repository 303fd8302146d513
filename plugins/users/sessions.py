"""Sessions and rotating refresh tokens, with reuse detection.

A *session* (a refresh-token *family*) starts at register/login; its id is the ``sid`` claim
of every access token issued in it. Each refresh uses up the presented refresh token and
hands out a new one in the same family. Presenting a used token again means it leaked (or
was stolen): the whole family is revoked, with the last access token issued in it.

Collections:

- ``refresh_tokens``: ``{_id: sha256(token), family, user_id, expires_at, used, revoked,
  created_at}``; the token itself is never stored.
- ``sessions``: ``{_id: family, user_id, last_jti, last_exp, revoked, created_at}``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from fittracker_plugins.users.store import new_id, now_iso

from fittracker import Unauthorized
from fittracker.storage import Collection, Database

Document = dict[str, Any]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Revoker(Protocol):
    """What revoking an access token needs (``ctx.auth``)."""

    async def revoke(self, jti: str, exp: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Rotated:
    """A refresh token that was just used up: whose it was and its family."""

    user_id: str
    family: str


class Sessions:
    """Create, rotate and revoke refresh-token families."""

    def __init__(self, db: Database, auth: Revoker, *, refresh_ttl_s: int) -> None:
        self.tokens: Collection = db.collection("refresh_tokens")
        self.sessions: Collection = db.collection("sessions")
        self.auth = auth
        self.refresh_ttl_s = refresh_ttl_s

    async def create_indexes(self) -> None:
        await self.tokens.create_index([("family", 1)])
        await self.tokens.create_index([("expires_at", 1)])
        await self.sessions.create_index([("user_id", 1)])

    async def start(self, user_id: str) -> str:
        """A new session for ``user_id``; returns its family id (the tokens' ``sid``)."""
        family = new_id()
        await self.sessions.insert_one(
            {
                "_id": family,
                "user_id": user_id,
                "last_jti": None,
                "last_exp": None,
                "revoked": False,
                "created_at": now_iso(),
            }
        )
        return family

    async def issue_refresh(self, user_id: str, family: str) -> str:
        """A new refresh token in ``family``; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        await self.tokens.insert_one(
            {
                "_id": token_hash(token),
                "family": family,
                "user_id": user_id,
                "expires_at": time.time() + self.refresh_ttl_s,
                "used": False,
                "revoked": False,
                "created_at": now_iso(),
            }
        )
        return token

    async def remember_access(self, family: str, jti: str, exp: int) -> None:
        """Record the last access token issued in ``family`` (revoked with the family)."""
        await self.sessions.update_one({"_id": family}, {"$set": {"last_jti": jti, "last_exp": exp}})

    async def rotate(self, token: str) -> Rotated:
        """Use up ``token`` and return its owner and family, for issuing the next pair.

        401 for unknown, expired or revoked tokens. A token that was already used revokes its
        whole family (refresh tokens and the last access token) before the 401. The update is
        conditional on ``used: false``, so of two concurrent refreshes exactly one wins.
        """
        digest = token_hash(token)
        now = time.time()
        doc = await self.tokens.update_one(
            {"_id": digest, "used": False, "revoked": False, "expires_at": {"$gt": now}},
            {"$set": {"used": True, "used_at": now_iso()}},
        )
        if doc is not None:
            session = await self.sessions.find_one({"_id": doc["family"]})
            if session is None or session.get("revoked"):
                raise Unauthorized("the session has ended; log in again")
            return Rotated(user_id=doc["user_id"], family=doc["family"])
        existing = await self.tokens.find_one({"_id": digest})
        if existing is None:
            raise Unauthorized("the refresh token is invalid")
        if existing.get("revoked"):
            raise Unauthorized("the session has ended; log in again")
        if existing.get("used"):
            await self.revoke_family(existing["family"])
            raise Unauthorized("the refresh token was already used; the session has been revoked")
        raise Unauthorized("the refresh token has expired; log in again")

    async def revoke_family(self, family: str) -> None:
        """End a session: its refresh tokens and its last access token stop working."""
        await self.tokens.update_many({"family": family}, {"$set": {"revoked": True}})
        session = await self.sessions.update_one(
            {"_id": family}, {"$set": {"revoked": True, "ended_at": now_iso()}}
        )
        if (
            session is not None
            and session.get("last_jti")
            and int(session.get("last_exp") or 0) > time.time()
        ):
            await self.auth.revoke(str(session["last_jti"]), int(session["last_exp"]))

    async def purge_expired(self) -> int:
        """Delete refresh tokens past their expiry (they can never be used again)."""
        return await self.tokens.delete_many({"expires_at": {"$lt": time.time()}})
