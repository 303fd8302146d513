"""Settings, clock and retry policy of the delivery pipeline (push and email).

``DELIVERY_DEFAULTS`` is merged into the notifications plug-in's config defaults, so every key
here lives in the ``[notifications]`` section. Times are stored as ISO-8601 UTC strings with
microseconds (``2025-01-31T08:00:00.000000+00:00``): one fixed width, so the storage layer can
compare them as strings (``next_attempt_at <= now``) on SQLite and MongoDB alike.
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fittracker import Setting

Clock = Callable[[], datetime]


def _webhook_secret(value: str) -> None:
    if value:
        webhook_key(value)


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ``whsec_<base64>``."""
    if not secret.startswith("whsec_"):
        raise ValueError("expected whsec_ followed by base64 (Standard Webhooks secret)")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("the part after whsec_ is not valid base64") from None
    if len(key) < 24:
        raise ValueError("the key must be at least 24 bytes (192 bits)")
    return key


DELIVERY_DEFAULTS: dict[str, Setting] = {
    # pipeline
    "delivery_max_attempts": Setting(6, "send attempts before a delivery is dead-lettered", min=1, max=100),
    "delivery_backoff_base_s": Setting(
        5.0, "first retry waits up to this (full jitter), doubling", min=0.001
    ),
    "delivery_backoff_max_s": Setting(3600.0, "longest wait between two attempts", min=0.001),
    "delivery_lease_s": Setting(
        60.0, "a claimed delivery is reserved this long; then another worker may take it", min=0.05
    ),
    "delivery_poll_interval_s": Setting(1.0, "how often idle senders look for due deliveries", min=0.01),
    "delivery_batch_size": Setting(50, "deliveries claimed per round", min=1, max=1000),
    "delivery_concurrency": Setting(8, "sends in flight per process", min=1, max=256),
    "max_devices_per_user": Setting(20, "push devices one user may register", min=1, max=1000),
    # push providers
    "push_timeout_s": Setting(10.0, "timeout of one push request", min=0.1),
    "webhook_secret": Setting(
        "", "whsec_<base64> key that signs webhook pushes; empty: no webhook devices", check=_webhook_secret
    ),
    "fcm_project_id": Setting("", "Firebase project id; empty: no FCM provider"),
    "fcm_access_token": Setting("", "OAuth 2 bearer token for FCM HTTP v1 (or give a token provider)"),
    "fcm_base_url": Setting("https://fcm.googleapis.com", "FCM endpoint (tests point it elsewhere)"),
    "apns_team_id": Setting("", "Apple developer team id (JWT iss); empty: no APNs provider"),
    "apns_key_id": Setting("", "id of the .p8 signing key (JWT kid)"),
    "apns_key_file": Setting("", "path of the .p8 (PEM) ES256 signing key"),
    "apns_topic": Setting("", "the app's bundle id (apns-topic header)"),
    "apns_base_url": Setting(
        "https://api.push.apple.com", "APNs endpoint (sandbox: api.sandbox.push.apple.com)"
    ),
    "apns_priority": Setting(10, "apns-priority: 10 immediate, 5 power-friendly", choices=(5, 10)),
    # email
    "smtp_host": Setting("", "SMTP server; empty: email is not sent (deliveries fail, clearly)"),
    "smtp_port": Setting(587, "SMTP port", min=1, max=65535),
    "smtp_security": Setting(
        "starttls", "starttls | tls (implicit, port 465) | none", choices=("starttls", "tls", "none")
    ),
    "smtp_username": Setting("", "SMTP login; empty: no AUTH"),
    "smtp_password": Setting("", "SMTP password"),
    "smtp_timeout_s": Setting(30.0, "timeout of one SMTP session", min=0.1),
    "email_from": Setting("FitTracker <no-reply@localhost>", "From header and envelope sender"),
    "email_reply_to": Setting("", "Reply-To header; empty: none"),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The stored form of a time (see the module docstring)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware one")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    """An ISO-8601 time with an offset (``Z`` allowed); naive times are taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    cap_s: float
    lease_s: float

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RetryPolicy:
        return cls(
            max_attempts=int(settings["delivery_max_attempts"]),
            base_s=float(settings["delivery_backoff_base_s"]),
            cap_s=float(settings["delivery_backoff_max_s"]),
            lease_s=float(settings["delivery_lease_s"]),
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_s)

    def backoff(self, attempt: int, rng: random.Random) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1-based): "full jitter", i.e.
        uniform in ``[0, min(cap, base * 2**(attempt-1))]``, so retries of many deliveries that
        failed together (a provider outage) spread out instead of arriving in waves."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(attempt - 1, 60))
        return timedelta(seconds=rng.uniform(0, ceiling))
