"""Email through a REAL local SMTP server (aiosmtpd): headers, both parts, escaping, AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fittracker_plugins.notifications.email_smtp import EmailFailure, SmtpConfig, SmtpSender
from fittracker_plugins.notifications.email_templates import render

from tests.notifications.conftest import MakeDeliveryClient, MakeDispatcher
from tests.notifications.delivery_helpers import notification, probe_context


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps what it receives, refuses ``nobody@`` with a 550."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            mailbox,
            hostname="mail.test",
            authenticator=mailbox.authenticate,
            auth_require_tls=False,  # a loopback test server has no certificate
            loop=loop,
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    yield mailbox, port
    server.close()
    await server.wait_closed()


def smtp_settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "email_from": "FitTracker <coach@fittracker.test>",
        "email_reply_to": "support@fittracker.test",
        **extra,
    }


async def test_email_through_the_pipeline_has_both_parts_escaped(
    make_delivery_client: MakeDeliveryClient,
    make_dispatcher: MakeDispatcher,
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    client = await make_delivery_client(**smtp_settings(port, smtp_username="mailer", smtp_password="s3cret"))
    dispatcher = await make_dispatcher(client)
    await (
        probe_context(client)
        .db.collection("users_directory")
        .insert_one({"_id": "u1", "email": "ada@example.com", "name": "Ada <Lovelace>", "timezone": "UTC"})
    )
    sneaky = notification(
        "u1", title="PR <script>alert(1)</script> & more", body="Squat: 140 kg\nDeadlift: <b>180</b> kg"
    )
    await dispatcher.enqueue(sneaky, ["email"], None)
    assert await dispatcher.run_once() == 1
    [(envelope, message)] = mailbox.messages
    assert mailbox.logins == ["mailer"]
    assert envelope.mail_from == "coach@fittracker.test" and envelope.rcpt_tos == ["ada@example.com"]
    assert message["From"] == "FitTracker <coach@fittracker.test>"
    assert message["Reply-To"] == "support@fittracker.test"
    assert message["To"].addresses[0].addr_spec == "ada@example.com"
    assert message["To"].addresses[0].display_name == "Ada <Lovelace>"
    assert message["Subject"] == "🏆 PR <script>alert(1)</script> & more"
    assert message["X-FitTracker-Notification"] == "n1" and message["Message-ID"].endswith(
        "@fittracker.test>"
    )
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = list(message.iter_parts())
    assert text_part.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    text = text_part.get_content()
    assert "Congratulations, Ada <Lovelace>!" in text
    assert "PR <script>alert(1)</script> & more" in text and "Deadlift: <b>180</b> kg" in text
    markup = html_part.get_content().replace("\r\n", "\n")
    assert "<script>" not in markup and "<b>180</b>" not in markup and "Lovelace>" not in markup
    assert "PR &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in markup
    assert "Squat: 140 kg<br>\nDeadlift: &lt;b&gt;180&lt;/b&gt; kg" in markup
    assert "Congratulations, Ada &lt;Lovelace&gt;!" in markup
    [record] = await dispatcher.for_notification("n1")
    assert record["state"] == "sent" and record["channel"] == "email"


async def test_wrong_credentials_are_retried_a_refused_recipient_is_not(
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    base = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_username": "",
        "smtp_password": "",
        "smtp_timeout_s": 5.0,
        "email_from": "coach@fittracker.test",
        "email_reply_to": "",
    }
    note = notification("u1")
    with pytest.raises(EmailFailure) as refused:
        await SmtpSender(SmtpConfig.from_settings(base)).send("nobody@example.com", "", note)
    assert refused.value.permanent and "550" in str(refused.value)
    bad_login = SmtpConfig.from_settings({**base, "smtp_username": "mailer", "smtp_password": "wrong"})
    with pytest.raises(EmailFailure) as denied:
        await SmtpSender(bad_login).send("ada@example.com", "", note)
    assert not denied.value.permanent  # an operator can fix the credentials: keep retrying
    closed = SmtpConfig.from_settings({**base, "smtp_port": 1})
    with pytest.raises(EmailFailure) as unreachable:
        await SmtpSender(closed).send("ada@example.com", "", note)
    assert not unreachable.value.permanent
    with pytest.raises(EmailFailure, match="not configured"):
        await SmtpSender(SmtpConfig.from_settings({**base, "smtp_host": ""})).send(
            "ada@example.com", "", note
        )
    assert mailbox.messages == []


def test_every_category_has_wording_and_header_injection_is_impossible() -> None:
    for category in ("achievements", "social", "coaching", "reminders", "system", "unknown"):
        rendered = render(
            {"category": category, "title": "Line one\r\nBcc: evil@example.com", "body": "x"}, ""
        )
        assert "\n" not in rendered.subject and "\r" not in rendered.subject
        assert (
            "Hi there," in rendered.text
            or "Hello there," in rendered.text
            or "Congratulations, there!" in rendered.text
        )
        assert rendered.html.startswith("<!DOCTYPE html>")
