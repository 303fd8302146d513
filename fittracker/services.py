"""The internal HTTP client: how a plug-in calls another plug-in's public API.

Calls go to the server's own front door (``server.public_url``, by default the address it
listens on), so they reach the other plug-in whether it runs in this process, in a worker or
on another host. The caller's request id travels along.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from fittracker.log import current_request_id


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ServiceClient:
    """A small JSON client over one keep-alive session, opened at start-up."""

    def __init__(self, base_url: str = "", timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self, base_url: str | None = None) -> None:
        if base_url:
            self.base_url = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, json_serialize=lambda o: orjson.dumps(o).decode()
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ServiceResponse:
        """Send ``method path`` (a path like ``/api/v1/users/me``) and decode a JSON answer."""
        if self._session is None or not self.base_url:
            raise RuntimeError("the service client is used before start-up")
        sent = dict(headers or {})
        request_id = current_request_id()
        if request_id:
            sent.setdefault("X-Request-ID", request_id)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        async with self._session.request(method, self.base_url + path, json=json, headers=sent) as resp:
            raw = await resp.read()
            body: Any = (
                orjson.loads(raw) if raw and "json" in resp.content_type else raw.decode(errors="replace")
            )
            return ServiceResponse(resp.status, body, dict(resp.headers))

    async def get(self, path: str, **kwargs: Any) -> ServiceResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> ServiceResponse:
        return await self.request("POST", path, **kwargs)
