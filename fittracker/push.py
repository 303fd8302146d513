"""The push-provider extension point: how a notification reaches a device.

Providers come from the ``fittracker_push_providers`` hook, so a plug-in can add a channel
(a chat app, an SMS gateway) without touching the one that sends notifications. A provider
handles the devices whose ``platform`` equals its ``platform``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Outcome = Literal["sent", "retry", "invalid_token", "failed"]


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What to show on the device, and data for the app."""

    notification_id: str
    title: str
    body: str
    category: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    user_id: str
    platform: str
    token: str


@dataclass(frozen=True, slots=True)
class PushResult:
    """``sent``; ``retry`` (temporary: try again later); ``invalid_token`` (the device is gone:
    deactivate it); ``failed`` (permanent for this message)."""

    outcome: Outcome
    detail: str = ""
    provider_id: str | None = None  # the provider's own message id, when it gives one


class PushProvider(Protocol):
    """Sends one message to one device of its platform."""

    platform: str

    async def send(self, device: Device, message: PushMessage) -> PushResult: ...

    async def close(self) -> None: ...
