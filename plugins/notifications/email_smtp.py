"""Email through SMTP with aiosmtplib: a multipart/alternative message (text, then HTML).

One SMTP session per message keeps the sender stateless between workers; the retry policy of
the delivery pipeline handles temporary failures, so this only says which kind a failure is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

import aiosmtplib
from fittracker_plugins.notifications.email_templates import render


class EmailFailure(Exception):
    """A send that did not happen; ``permanent`` ones are not retried."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str
    password: str
    timeout_s: float
    sender: str
    reply_to: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SmtpConfig:
        return cls(
            host=str(settings["smtp_host"]),
            port=int(settings["smtp_port"]),
            security=str(settings["smtp_security"]),
            username=str(settings["smtp_username"]),
            password=str(settings["smtp_password"]),
            timeout_s=float(settings["smtp_timeout_s"]),
            sender=str(settings["email_from"]),
            reply_to=str(settings["email_reply_to"]),
        )


def build_message(config: SmtpConfig, to: str, name: str, notification: dict[str, Any]) -> EmailMessage:
    rendered = render(notification, name)
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = Address(display_name=name, addr_spec=to) if name else to
    if config.reply_to:
        message["Reply-To"] = config.reply_to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(config.sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=str(notification.get("id", "")) or None, domain=domain)
    message["X-FitTracker-Notification"] = str(notification.get("id", ""))
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class SmtpSender:
    """Sends notifications by email with the ``smtp_*`` / ``email_*`` settings."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @property
    def configured(self) -> bool:
        return bool(self.config.host)

    async def send(self, to: str, name: str, notification: dict[str, Any]) -> None:
        if not self.configured:
            raise EmailFailure("email is not configured (notifications.smtp_host is empty)", permanent=True)
        try:
            message = build_message(self.config, to, name, notification)
        except (ValueError, IndexError) as exc:  # e.g. an address the email package refuses
            raise EmailFailure(f"cannot build the email for {to!r}: {exc}", permanent=True) from None
        cfg = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username or None,
                password=cfg.password or None,
                use_tls=cfg.security == "tls",
                start_tls=cfg.security == "starttls",
                timeout=cfg.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [err.code for err in exc.recipients]
            permanent = all(500 <= code < 600 for code in codes)
            raise EmailFailure(f"the SMTP server refused {to!r}: {exc}", permanent=permanent) from None
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is final for this message, except authentication (an operator can fix it).
            permanent = 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError)
            raise EmailFailure(f"SMTP {exc.code}: {exc.message}", permanent=permanent) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise EmailFailure(f"SMTP unavailable: {type(exc).__name__}: {exc}", permanent=False) from None
