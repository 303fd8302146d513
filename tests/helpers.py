"""Small helpers for API tests."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp.test_utils import TestClient

from tests.spec import check_response

if TYPE_CHECKING:
    from tests.deployments import LiveClient

__all__ = ["auth", "check_response", "register"]

DEFAULT_PASSWORD = "correct horse battery"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: TestClient[Any, Any] | LiveClient,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    name: str = "Test User",
) -> dict[str, Any]:
    """Register a user and return the 201 body (tokens and user)."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    resp = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": name}
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body
