"""A real SMTP server on loopback (aiosmtpd) that tests send mail to and read back."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from cityexchange.settings import Secret, Settings


@dataclass
class MailServer:
    """An SMTP server on loopback that keeps every message it accepts, or refuses with the
    replies it is given, in turn."""

    replies: list[str] = field(default_factory=list)
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@asynccontextmanager
async def mail_server(server: MailServer) -> AsyncIterator[MailServer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        server.port = probe.getsockname()[1]
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    await asyncio.to_thread(controller.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(controller.stop)


@pytest.fixture
async def mail() -> AsyncIterator[MailServer]:
    async with mail_server(MailServer()) as server:
        yield server


def sending_to(settings: Settings, server: MailServer) -> Settings:
    """`settings` with mail through `server`."""
    return dataclasses.replace(
        settings,
        smtp_url=Secret(f"smtp://127.0.0.1:{server.port}"),
        mail_from="Exchange <alerts@exchange.example.org>",
    )
