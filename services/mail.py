"""Email the exchange sends (crisis alerts, services/crisis_alerts.py): queued durably in the
database and sent by one loop per process through the configured SMTP server
(cityexchange/mail.py).

At most once: a message is claimed with a lease before it is sent, so two replicas never
send it both; one whose sender died mid-send (the lease ran out while `sending`) is marked
`unknown` and not sent again, since the server may have taken it. A refusal the server calls
temporary (4xx), or no answer at all, is retried with backoff; a permanent one (5xx) is not."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

from cityexchange.services import polling
from cityexchange.services.clock import now
from cityexchange.services.models import Mail
from cityexchange.services.store import mail_outbox as store
from cityexchange.services.store.database import Database

log = logging.getLogger("cityexchange.mail")

MAX_ATTEMPTS = 5
POLL_SECONDS = 1.0


class MailRefused(Exception):
    """The SMTP server refused the message; `permanent` when it says so (5xx)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    """Sends one message, or raises MailRefused (OSError or TimeoutError: no answer)."""

    async def send(self, message: EmailMessage) -> None: ...


def message_of(mail: Mail, *, sender: str, domain: str) -> EmailMessage:
    """`mail` as an RFC 5322 message with text and HTML parts (multipart/alternative)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now())
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    for name, value in mail.headers.items():
        message[name] = value
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


async def queue(db: Database, key: str, mail: Mail) -> bool:
    """Queue `mail` once under `key` (idempotent across replicas); whether it was new."""
    return await store.insert(db, key, mail)


@dataclass(slots=True)
class Outbox:
    """Sends queued mail until stopped, one message at a time (mail is rare and small)."""

    db: Database
    mailer: Mailer
    sender: str
    domain: str
    lease_seconds: float = 60.0
    retry_base_seconds: float = 30.0
    send_timeout_seconds: float = 30.0
    worker: str = field(default_factory=lambda: secrets.token_hex(6))

    async def run(self, stopping: asyncio.Event) -> None:
        async def round() -> None:
            await store.give_up_on_lost(self.db, at=now())
            while not stopping.is_set() and await self.send_one():
                pass

        paused = "mail paused: the database is unreachable"
        await polling.every(POLL_SECONDS, stopping, round, log=log, paused=paused)

    async def send_one(self) -> bool:
        """Claim and send the next message due; whether there was one."""
        claimed = await store.claim(
            self.db, worker=self.worker, at=now(), lease=timedelta(seconds=self.lease_seconds)
        )
        if claimed is None:
            return False
        key, mail, attempts = claimed
        error: str | None = None
        permanent = False
        try:
            async with asyncio.timeout(self.send_timeout_seconds):
                await self.mailer.send(message_of(mail, sender=self.sender, domain=self.domain))
        except MailRefused as refused:
            error, permanent = str(refused), refused.permanent
        except (OSError, TimeoutError) as unreachable:
            error = f"no answer from the mail server ({type(unreachable).__name__})"
        if error is None:
            await store.finish(self.db, key, worker=self.worker, state="sent", error=None)
            return True
        made = attempts + 1
        if permanent or made >= MAX_ATTEMPTS:
            log.warning("mail %s not sent: %s", key, error)
            await store.finish(self.db, key, worker=self.worker, state="failed", error=error)
        else:
            due = now() + timedelta(seconds=self.retry_base_seconds * 2 ** (made - 1))
            await store.retry(self.db, key, worker=self.worker, due_at=due, error=error)
        return True
