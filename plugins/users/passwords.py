"""Password hashing with argon2id (argon2-cffi), off the event loop.

Hashing is deliberately slow (tens of milliseconds and tens of MiB), so every hash and verify
runs in the default thread executor. Stored hashes carry their own parameters; a login with
a hash made under older parameters is re-hashed (:meth:`Passwords.needs_rehash`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords; also verifies against a dummy hash to equalise timing."""

    def __init__(self, *, time_cost: int = 3, memory_cost_kib: int = 65_536, parallelism: int = 4) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Passwords:
        return cls(
            time_cost=int(settings["argon2_time_cost"]),
            memory_cost_kib=int(settings["argon2_memory_kib"]),
            parallelism=int(settings["argon2_parallelism"]),
        )

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` (PHC string format, salt included)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.hash_sync, password)

    async def verify(self, hashed: str, password: str) -> bool:
        """Whether ``password`` matches ``hashed``; False (never an exception) otherwise."""
        return await asyncio.get_running_loop().run_in_executor(None, self.verify_sync, hashed, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time a real verify takes, for logins of unknown accounts."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy, password)

    async def warm_up(self) -> None:
        """Prepare the dummy hash at start-up, so the first unknown login is not faster."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))

    def needs_rehash(self, hashed: str) -> bool:
        """True when ``hashed`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True
