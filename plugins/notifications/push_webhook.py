"""Webhook push: POST the notification to the device's URL, signed per Standard Webhooks.

Headers ``webhook-id`` (the notification id, the same on every retry so the receiver can
deduplicate), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), keyed with the ``whsec_`` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from fittracker_plugins.notifications.delivery_policy import webhook_key

from fittracker.push import Device, Outcome, PushMessage, PushResult


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one request."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def classify(status: int) -> Outcome:
    """Delivery outcome of an HTTP status, as the push providers read it."""
    if 200 <= status < 300:
        return "sent"
    if status == 429 or status >= 500 or status == 408:
        return "retry"
    return "failed"


class WebhookProvider:
    """Platform ``webhook``: the device token is the receiver's URL."""

    platform = "webhook"

    def __init__(self, secret: str, *, timeout_s: float = 10.0, now: Callable[[], float] = time.time) -> None:
        self._key = webhook_key(secret)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._now = now
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> WebhookProvider | None:
        secret = str(settings.get("webhook_secret", ""))
        return cls(secret, timeout_s=float(settings["push_timeout_s"])) if secret else None

    def payload(self, message: PushMessage, timestamp: int) -> bytes:
        event = {
            "type": f"notification.{message.category}",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
            "data": {
                "notification_id": message.notification_id,
                "category": message.category,
                "title": message.title,
                "body": message.body,
                "data": dict(message.data),
            },
        }
        return orjson.dumps(event)

    async def send(self, device: Device, message: PushMessage) -> PushResult:
        timestamp = int(self._now())
        body = self.payload(message, timestamp)
        msg_id = message.notification_id
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, msg_id, timestamp, body),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                device.token, data=body, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return PushResult("retry", f"webhook unreachable: {type(exc).__name__}: {exc}")
        if status == 410:  # Standard Webhooks: 410 Gone means "stop sending here"
            return PushResult("invalid_token", "the webhook answered 410 Gone")
        outcome = classify(status)
        return PushResult(outcome, "" if outcome == "sent" else f"the webhook answered HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
