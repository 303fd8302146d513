"""Firebase Cloud Messaging, HTTP v1 API.

``POST {base}/v1/projects/{project}/messages:send`` with a bearer OAuth 2 access token and
``{"message": {"token", "notification": {"title", "body"}, "data": {str: str}}}``. The token
comes from config (``fcm_access_token``) or from a token provider callable (e.g. one built on a
service account), asked before each send so it can refresh.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from fittracker_plugins.notifications.push_webhook import classify

from fittracker.push import Device, PushMessage, PushResult

TokenProvider = Callable[[], Awaitable[str]]
_GONE = {"UNREGISTERED", "INVALID_ARGUMENT"}


def _as_str(value: Any) -> str:
    # FCM's data map holds strings only: encode anything else as JSON.
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def fcm_error(body: bytes) -> tuple[str, str]:
    """``(status or errorCode, message)`` of an FCM error body (``google.rpc.Status``)."""
    try:
        error = orjson.loads(body).get("error", {})
    except (orjson.JSONDecodeError, AttributeError):
        return "", body[:200].decode(errors="replace")
    codes = [d.get("errorCode", "") for d in error.get("details", []) if isinstance(d, dict)]
    code = next((c for c in codes if c), "") or str(error.get("status", ""))
    return code, str(error.get("message", ""))


class FcmProvider:
    """Platform ``fcm``: the device token is an FCM registration token."""

    platform = "fcm"

    def __init__(
        self,
        project_id: str,
        token_provider: TokenProvider,
        *,
        base_url: str = "https://fcm.googleapis.com",
        timeout_s: float = 10.0,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._token_provider = token_provider
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], token_provider: TokenProvider | None = None
    ) -> FcmProvider | None:
        project = str(settings.get("fcm_project_id", ""))
        static = str(settings.get("fcm_access_token", ""))
        if not project or not (static or token_provider):
            return None

        async def configured() -> str:
            return static

        return cls(
            project,
            token_provider or configured,
            base_url=str(settings["fcm_base_url"]),
            timeout_s=float(settings["push_timeout_s"]),
        )

    @staticmethod
    def payload(device: Device, message: PushMessage) -> dict[str, Any]:
        data = {key: _as_str(value) for key, value in message.data.items()}
        data.update(notification_id=message.notification_id, category=message.category)
        return {
            "message": {
                "token": device.token,
                "notification": {"title": message.title, "body": message.body},
                "data": data,
            }
        }

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            headers = {"authorization": f"Bearer {await self._token_provider()}"}
            async with self._session.post(
                self.url,
                data=orjson.dumps(self.payload(device, message)),
                headers=headers | {"content-type": "application/json; charset=utf-8"},
            ) as resp:
                status, body = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return PushResult("retry", f"FCM unreachable: {type(exc).__name__}: {exc}")
        if status == 200:
            name = orjson.loads(body).get("name") if body else None
            return PushResult("sent", provider_id=name if isinstance(name, str) else None)
        code, text = fcm_error(body)
        detail = f"FCM answered HTTP {status} {code}: {text}".strip()
        if status == 404 or (status == 400 and code in _GONE) or code == "UNREGISTERED":
            return PushResult("invalid_token", detail)
        if status == 401:  # an expired access token: the provider hands out a fresh one next time
            return PushResult("retry", detail)
        return PushResult(classify(status), detail)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
