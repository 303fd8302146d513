"""Push devices: who may be reached where, and token validation per platform.

A device is ``{_id, user_id, platform, token, name, active, created_at, updated_at}``, unique
by ``(platform, token)``: a token identifies one installation, so registering a token that
another user registered moves it (the phone changed hands or accounts) instead of letting two
users receive each other's notifications.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from fittracker_plugins.notifications.delivery_policy import Clock, iso, utcnow

from fittracker.push import Device
from fittracker.storage import Database, Document, DuplicateKeyError

BUILTIN_PLATFORMS = ("fcm", "apns", "webhook")

_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:.\-]{32,4096}")
_APNS_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")
# Third-party platforms: any printable token without whitespace.
_GENERIC_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_MAX_URL = 2048


class DeviceError(ValueError):
    """A token that cannot be a token of its platform."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> None:
    if len(url) > _MAX_URL:
        raise DeviceError(f"a webhook URL has at most {_MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DeviceError("a webhook token is an absolute https:// URL")
    if parts.username or parts.password:
        raise DeviceError("a webhook URL may not hold credentials")
    if any(ch.isspace() for ch in url):
        raise DeviceError("a webhook URL may not contain whitespace")
    # Plain http would leak signed payloads on the wire; it is allowed for loopback (tests).
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise DeviceError("a webhook URL must use https (http only for loopback hosts)")


def check_token(platform: str, token: str) -> str:
    """The token, normalised; :class:`DeviceError` saying what is wrong."""
    token = token.strip()
    if platform == "webhook":
        check_webhook_url(token)
    elif platform == "fcm":
        if not _FCM_TOKEN.fullmatch(token):
            raise DeviceError("an FCM registration token has 32-4096 characters from A-Z a-z 0-9 _ : . -")
    elif platform == "apns":
        if not _APNS_TOKEN.fullmatch(token):
            raise DeviceError("an APNs device token is 64-200 hexadecimal digits")
        token = token.lower()
    elif not _GENERIC_TOKEN.fullmatch(token):
        raise DeviceError("a device token has 1-4096 printable characters and no spaces")
    return token


def public(doc: Document) -> dict[str, Any]:
    """A device as the API shows it."""
    return {
        "id": doc["_id"],
        "platform": doc["platform"],
        "token": doc["token"],
        "name": doc.get("name"),
        "active": doc["active"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def as_device(doc: Document) -> Device:
    return Device(id=doc["_id"], user_id=doc["user_id"], platform=doc["platform"], token=doc["token"])


class DeviceStore:
    """The ``devices`` collection of the notifications database."""

    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.devices = db.collection("devices")
        self._clock = clock

    async def start(self) -> None:
        await self.devices.create_index([("platform", 1), ("token", 1)], unique=True)
        await self.devices.create_index([("user_id", 1), ("active", 1)])

    async def register(self, user_id: str, platform: str, token: str, name: str | None) -> Document:
        """Idempotent: the same token again reactivates (and, for another user, moves) it."""
        now = iso(self._clock())
        changes: dict[str, Any] = {"user_id": user_id, "active": True, "updated_at": now}
        if name is not None:
            changes["name"] = name
        key = {"platform": platform, "token": token}
        for _ in range(3):  # a concurrent first registration of the same token wins; then update
            found = await self.devices.update_one(key, {"$set": changes})
            if found is not None:
                return found
            try:
                return await self.devices.insert_one({**key, **changes, "name": name, "created_at": now})
            except DuplicateKeyError:
                continue
        raise RuntimeError("device registration kept racing")  # pragma: no cover

    async def count_active(self, user_id: str) -> int:
        return await self.devices.count({"user_id": user_id, "active": True})

    async def owned(self, user_id: str, platform: str, token: str) -> bool:
        return await self.devices.count({"user_id": user_id, "platform": platform, "token": token}) > 0

    async def list_for(self, user_id: str) -> list[Document]:
        return await self.devices.find({"user_id": user_id}, sort=[("created_at", 1), ("_id", 1)])

    async def active_for(self, user_id: str) -> list[Document]:
        return await self.devices.find({"user_id": user_id, "active": True}, sort=[("created_at", 1)])

    async def get(self, device_id: str) -> Document | None:
        return await self.devices.find_one({"_id": device_id})

    async def delete(self, user_id: str, device_id: str) -> bool:
        return await self.devices.delete_one({"_id": device_id, "user_id": user_id}) == 1

    async def deactivate(self, device_id: str) -> None:
        """Turn a device off after its provider said the token is gone (kept, not deleted, so
        the user sees why pushes stopped; registering the token again turns it back on)."""
        now = iso(self._clock())
        await self.devices.update_one({"_id": device_id}, {"$set": {"active": False, "updated_at": now}})
