"""Database access for accounts, profiles and follows (the ``users`` database).

Collections:

- ``users``: one document per account, with its profile fields flat on it::

      {_id, email, name, name_key, name_words, role, password_hash, public,
       height_cm, weight_kg, birth_date, sex, experience, goals, equipment, excluded_muscles, units,
       days_per_week, bio, timezone, created_at, updated_at}

  ``email`` has a unique index: two concurrent registrations of one address cannot both win.
  ``name_words`` holds the lower-cased words of the name, for prefix search.
- ``follows``: ``{_id: "<follower>:<followee>", follower_id, followee_id, followed_at}``; the
  composed ``_id`` makes following idempotent and race-free.

Timestamps are ISO 8601 UTC strings with microseconds, so they sort as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fittracker.http.pagination import after_cursor, encode_cursor
from fittracker.ids import random_hex
from fittracker.storage import Collection, Database, DuplicateKeyError

Document = dict[str, Any]

_USER_ID = re.compile(r"^[0-9a-f]{32}$")
_WORD = re.compile(r"\w+")

PROFILE_DEFAULTS: dict[str, Any] = {
    "height_cm": None,
    "weight_kg": None,
    "birth_date": None,
    "sex": None,
    "experience": None,
    "goals": [],
    "equipment": [],
    "excluded_muscles": [],
    "units": "kg",
    "days_per_week": None,
    "bio": None,
    "timezone": None,
    "public": True,
}


class EmailTaken(Exception):
    """The email address already belongs to an account."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    return random_hex()


def valid_user_id(value: str) -> bool:
    """Whether ``value`` has the shape of a user id (anything else cannot exist)."""
    return bool(_USER_ID.match(value))


def name_words(name: str) -> list[str]:
    """Lower-cased words of a name, for prefix search ("Bob O'Brien" -> bob, o'brien, o, brien)."""
    lowered = name.lower()
    words = lowered.split() + _WORD.findall(lowered)
    return list(dict.fromkeys(words))


class UserStore:
    """Accounts, profiles and the follow graph."""

    def __init__(self, db: Database) -> None:
        self.users: Collection = db.collection("users")
        self.follows: Collection = db.collection("follows")

    async def create_indexes(self) -> None:
        await self.users.create_index([("email", 1)], unique=True)
        await self.users.create_index([("name_key", 1), ("_id", 1)])
        await self.users.create_index([("name_words", 1)])
        await self.follows.create_index([("followee_id", 1), ("followed_at", -1), ("follower_id", -1)])
        await self.follows.create_index([("follower_id", 1), ("followed_at", -1), ("followee_id", -1)])

    # accounts ----------------------------------------------------------------------------------
    async def create_user(self, *, email: str, name: str, password_hash: str, role: str = "user") -> Document:
        """Insert a new account; :class:`EmailTaken` if the (normalised) email is in use."""
        now = now_iso()
        doc: Document = {
            "_id": new_id(),
            "email": email,
            "name": name,
            "name_key": name.lower(),
            "name_words": name_words(name),
            "role": role,
            "password_hash": password_hash,
            **PROFILE_DEFAULTS,
            "goals": [],
            "equipment": [],
            "excluded_muscles": [],
            "created_at": now,
            "updated_at": now,
        }
        try:
            return await self.users.insert_one(doc)
        except DuplicateKeyError:
            raise EmailTaken(email) from None

    async def get(self, user_id: str) -> Document | None:
        if not valid_user_id(user_id):
            return None
        return await self.users.find_one({"_id": user_id})

    async def by_email(self, email: str) -> Document | None:
        return await self.users.find_one({"email": email})

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.users.update_one(
            {"_id": user_id}, {"$set": {"password_hash": password_hash, "updated_at": now_iso()}}
        )

    async def set_role(self, user_id: str, role: str) -> None:
        await self.users.update_one({"_id": user_id}, {"$set": {"role": role, "updated_at": now_iso()}})

    # profiles ----------------------------------------------------------------------------------
    async def update_profile(self, user_id: str, changes: Mapping[str, Any]) -> Document | None:
        """Apply profile ``changes`` (already validated, JSON-ready); returns the new document."""
        fields: dict[str, Any] = dict(changes)
        if "name" in fields:
            fields["name_key"] = fields["name"].lower()
            fields["name_words"] = name_words(fields["name"])
        fields["updated_at"] = now_iso()
        return await self.users.update_one({"_id": user_id}, {"$set": fields})

    async def follow_counts(self, user_id: str) -> tuple[int, int]:
        """(followers, following) of ``user_id``."""
        followers = await self.follows.count({"followee_id": user_id})
        following = await self.follows.count({"follower_id": user_id})
        return followers, following

    # search --------------------------------------------------------------------------------------
    async def search(self, q: str, limit: int, cursor: str | None) -> tuple[list[Document], str | None]:
        """Public accounts whose name has a word starting with each word of ``q``, by name."""
        clauses: list[Mapping[str, Any]] = [{"public": True}]
        for token in q.lower().split()[:8]:
            clauses.append({"name_words": {"$regex": "^" + re.escape(token)}})
        clauses.extend(after_cursor("name_key", "_id", cursor, descending=False))
        docs = await self.users.find({"$and": clauses}, sort=[("name_key", 1), ("_id", 1)], limit=limit + 1)
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor(docs[-1]["name_key"], docs[-1]["_id"])
        return docs, next_cursor

    # follows -------------------------------------------------------------------------------------
    async def follow(self, follower_id: str, followee_id: str) -> bool:
        """Follow; True when the follow is new, False when it already existed."""
        doc = {
            "_id": f"{follower_id}:{followee_id}",
            "follower_id": follower_id,
            "followee_id": followee_id,
            "followed_at": now_iso(),
        }
        try:
            await self.follows.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def unfollow(self, follower_id: str, followee_id: str) -> bool:
        """Stop following; True when a follow was removed."""
        return await self.follows.delete_one({"_id": f"{follower_id}:{followee_id}"}) == 1

    async def is_following(self, follower_id: str, followee_id: str) -> bool:
        return await self.follows.find_one({"_id": f"{follower_id}:{followee_id}"}) is not None

    async def followers(
        self, user_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """Who follows ``user_id``, newest first: ``[{id, name, followed_at}]`` and the next cursor."""
        return await self._follow_page("followee_id", "follower_id", user_id, limit, cursor)

    async def following(
        self, user_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """Whom ``user_id`` follows, newest first."""
        return await self._follow_page("follower_id", "followee_id", user_id, limit, cursor)

    async def _follow_page(
        self, own: str, other: str, user_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        clauses: list[Mapping[str, Any]] = [
            {own: user_id},
            *after_cursor("followed_at", other, cursor, descending=True),
        ]
        rows = await self.follows.find(
            {"$and": clauses}, sort=[("followed_at", -1), (other, -1)], limit=limit + 1
        )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1]["followed_at"], rows[-1][other])
        names = await self._names([row[other] for row in rows])
        items = [
            {"id": row[other], "name": names.get(row[other], ""), "followed_at": row["followed_at"]}
            for row in rows
        ]
        return items, next_cursor

    async def _names(self, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        docs = await self.users.find({"_id": {"$in": list(ids)}})
        return {doc["_id"]: doc["name"] for doc in docs}
