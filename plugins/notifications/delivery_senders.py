"""How one claimed delivery is sent: the push providers, the email sender, and the metric.

Providers are the built-ins that are configured (webhook, FCM, APNs) plus whatever plug-ins
return from ``fittracker_push_providers``; a plug-in's provider replaces a built-in of the same
platform. Web Push is not built in: it needs RFC 8291 payload encryption and VAPID, which
are not implemented yet; a plug-in can still provide a ``webpush`` platform.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fittracker_plugins.notifications.delivery_policy import Clock
from fittracker_plugins.notifications.devices import DeviceStore, as_device
from fittracker_plugins.notifications.email_smtp import EmailFailure, SmtpConfig, SmtpSender
from fittracker_plugins.notifications.push_apns import ApnsProvider
from fittracker_plugins.notifications.push_fcm import FcmProvider
from fittracker_plugins.notifications.push_webhook import WebhookProvider
from prometheus_client import Counter

from fittracker import PluginContext
from fittracker.push import PushMessage, PushProvider
from fittracker.storage import Document

Outcome = Literal["sent", "retry", "failed"]
METRIC = "fittracker_notification_deliveries"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    provider_id: str | None = None


def delivery_metric(ctx: PluginContext) -> Counter:
    """Deliveries entering each state, by channel (one counter per registry)."""
    registry = ctx.metrics.registry
    try:
        return Counter(
            METRIC, "Notification deliveries by channel and state", ["channel", "state"], registry=registry
        )
    except ValueError:  # already registered by an earlier Dispatcher of this application
        existing = registry._names_to_collectors[METRIC]  # no public lookup exists
        assert isinstance(existing, Counter)
        return existing


def builtin_providers(settings: Mapping[str, Any]) -> list[PushProvider]:
    """The built-in providers whose settings are filled in."""
    found: list[PushProvider | None] = [
        WebhookProvider.from_settings(settings),
        FcmProvider.from_settings(settings),
        ApnsProvider.from_settings(settings),
    ]
    return [provider for provider in found if provider is not None]


def hook_providers(ctx: PluginContext) -> list[PushProvider]:
    """Providers from plug-ins, earliest registered first (so later ones win a platform)."""
    if ctx.hooks is None:
        return []
    answers = ctx.hooks.fittracker_push_providers(ctx=ctx)
    # pluggy calls the most recently registered implementation first.
    return [provider for answer in reversed(answers) for provider in answer or ()]


class Senders:
    """Sends one delivery record on its channel; never raises for an expected failure."""

    def __init__(self, ctx: PluginContext, clock: Clock) -> None:
        self.ctx = ctx
        self.devices = DeviceStore(ctx.db, clock)
        self.directory = ctx.db.collection("users_directory")
        self.email = SmtpSender(SmtpConfig.from_settings(ctx.settings))
        self.providers: dict[str, PushProvider] = {}

    @property
    def platforms(self) -> frozenset[str]:
        return frozenset(self.providers)

    async def start(self) -> None:
        await self.devices.start()
        for provider in [*builtin_providers(self.ctx.settings), *hook_providers(self.ctx)]:
            self.providers[provider.platform] = provider

    async def close(self) -> None:
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        self.providers.clear()

    async def send(self, doc: Document) -> SendResult:
        if doc["channel"] == "push":
            return await self.push(doc)
        if doc["channel"] == "email":
            return await self.mail(doc)
        return SendResult("failed", f"channel {doc['channel']!r} is not sent by the dispatcher")

    async def push(self, doc: Document) -> SendResult:
        found = await self.devices.get(str(doc["device_id"]))
        if found is None or found["user_id"] != doc["user_id"]:
            return SendResult("failed", "the device was deleted (or moved to another user)")
        if not found["active"]:
            return SendResult("failed", "the device is deactivated")
        provider = self.providers.get(found["platform"])
        if provider is None:
            return SendResult("failed", f"no push provider is configured for platform {found['platform']!r}")
        content = doc["message"]
        message = PushMessage(
            notification_id=doc["notification_id"],
            title=str(content.get("title") or ""),
            body=str(content.get("body") or ""),
            category=doc["category"],
            data=dict(content.get("data") or {}),
        )
        result = await provider.send(as_device(found), message)
        if result.outcome == "invalid_token":
            await self.devices.deactivate(found["_id"])
            return SendResult("failed", f"invalid token, device deactivated: {result.detail}".rstrip(": "))
        return SendResult(result.outcome, result.detail, result.provider_id)

    async def mail(self, doc: Document) -> SendResult:
        entry = await self.directory.find_one({"_id": doc["user_id"]})
        address = (entry or {}).get("email")
        if not address:
            return SendResult(
                "failed", f"no email address for user {doc['user_id']} (not in users_directory)"
            )
        notification = {**doc["message"], "id": doc["notification_id"], "category": doc["category"]}
        try:
            await self.email.send(str(address), str((entry or {}).get("name") or ""), notification)
        except EmailFailure as exc:
            return SendResult("failed" if exc.permanent else "retry", str(exc))
        return SendResult("sent")
