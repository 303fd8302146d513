"""Apple Push Notification service over HTTP/2 (aiohttp has no HTTP/2 client: httpx does it).

``POST {base}/3/device/<token>`` with ``apns-topic``, ``apns-push-type: alert``,
``apns-priority``, ``apns-id`` and ``authorization: bearer <provider token>``, where the
provider token is an ES256 JWT (header ``kid`` = key id; claims ``iss`` = team id, ``iat``)
signed with the team's ``.p8`` key. Apple refuses tokens older than an hour and throttles
ones renewed more than every 20 minutes, so one is kept for 50 minutes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from fittracker_plugins.notifications.push_webhook import classify

from fittracker.push import Device, PushMessage, PushResult

TOKEN_TTL_S = 50 * 60
_GONE_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"}
_STALE_JWT = {"ExpiredProviderToken", "InvalidProviderToken"}


class ApnsProvider:
    """Platform ``apns``: the device token is the hex token the app got from iOS."""

    platform = "apns"

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        private_key: str,
        topic: str,
        base_url: str = "https://api.push.apple.com",
        priority: int = 10,
        timeout_s: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self.base_url = base_url.rstrip("/")
        self.priority = priority
        self._key = private_key
        self._now = now
        self._timeout = timeout_s
        self._jwt: tuple[str, float] | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ApnsProvider | None:
        team, key_id, key_file = (
            str(settings.get(k, "")) for k in ("apns_team_id", "apns_key_id", "apns_key_file")
        )
        if not (team and key_id and key_file):
            return None
        return cls(
            team_id=team,
            key_id=key_id,
            private_key=Path(key_file).read_text(encoding="utf-8"),
            topic=str(settings["apns_topic"]),
            base_url=str(settings["apns_base_url"]),
            priority=int(settings["apns_priority"]),
            timeout_s=float(settings["push_timeout_s"]),
        )

    def provider_token(self) -> str:
        """The cached ES256 JWT, renewed when it is 50 minutes old."""
        now = self._now()
        if self._jwt is None or now - self._jwt[1] >= TOKEN_TTL_S:
            token = jwt.encode(
                {"iss": self.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._jwt = (token, now)
        return self._jwt[0]

    @staticmethod
    def payload(message: PushMessage) -> dict[str, Any]:
        # Custom keys sit beside "aps"; a data key named "aps" must not clobber the alert.
        extra = {key: value for key, value in message.data.items() if key != "aps"}
        extra.setdefault("notification_id", message.notification_id)
        extra.setdefault("category", message.category)
        return {"aps": {"alert": {"title": message.title, "body": message.body}}, **extra}

    def headers(self, message: PushMessage) -> dict[str, str]:
        return {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": str(self.priority),
            # The same id on every retry of one notification (APNs wants a UUID).
            "apns-id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fittracker:{message.notification_id}")),
            "content-type": "application/json",
        }

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        if self._client is None:
            # APNs speaks only HTTP/2: no HTTP/1.1 fallback (for http:// URLs, prior knowledge).
            self._client = httpx.AsyncClient(http1=False, http2=True, timeout=self._timeout)
        url = f"{self.base_url}/3/device/{device.token}"
        try:
            resp = await self._client.post(
                url, content=orjson.dumps(self.payload(message)), headers=self.headers(message)
            )
        except httpx.HTTPError as exc:
            return PushResult("retry", f"APNs unreachable: {type(exc).__name__}: {exc}")
        if resp.status_code == 200:
            return PushResult("sent", provider_id=resp.headers.get("apns-id"))
        reason = _reason(resp.content)
        detail = f"APNs answered HTTP {resp.status_code} {reason}".strip()
        if resp.status_code == 410 or (resp.status_code == 400 and reason in _GONE_REASONS):
            return PushResult("invalid_token", detail)
        if resp.status_code == 403 and reason in _STALE_JWT:
            self._jwt = None  # sign a fresh provider token for the retry
            return PushResult("retry", detail)
        return PushResult(classify(resp.status_code), detail)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _reason(body: bytes) -> str:
    try:
        reason = orjson.loads(body).get("reason", "")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return reason if isinstance(reason, str) else ""
