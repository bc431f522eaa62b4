"""The SMTP side of mail (services/mail.py): CITYEXCHANGE_SMTP_URL read into a sender.

`smtp://[user:password@]host[:port]` upgrades with STARTTLS when the server offers it
(port 587 by default, 25 otherwise as given); `smtps://` speaks TLS from the start (465).
Add `?starttls=required` to refuse a server that does not offer STARTTLS."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from cityexchange.services.mail import MailRefused
from cityexchange.settings import SettingsError


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # implicit TLS (smtps)
    start_tls: bool | None = None  # None: when offered; True: required
    timeout_seconds: float = 20.0

    @classmethod
    def from_url(cls, url: str) -> SmtpMailer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SettingsError(
                "CITYEXCHANGE_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://..."
            )
        try:
            port = parts.port
        except ValueError:
            raise SettingsError("CITYEXCHANGE_SMTP_URL has a port that is not a number") from None
        implicit = parts.scheme == "smtps"
        starttls = parse_qs(parts.query).get("starttls", [""])[0]
        if starttls not in ("", "required"):
            raise SettingsError("CITYEXCHANGE_SMTP_URL: starttls may only be 'required'")
        return cls(
            hostname=parts.hostname,
            port=port or (465 if implicit else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=True if starttls == "required" else None,
        )

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=False if self.use_tls else self.start_tls,
                timeout=self.timeout_seconds,
            )
        except aiosmtplib.SMTPResponseException as refused:
            raise MailRefused(
                f"{refused.code} {refused.message}", permanent=500 <= refused.code < 600
            ) from None
        except aiosmtplib.SMTPException as failed:  # no connection, lost, timed out, refused
            raise MailRefused(f"{type(failed).__name__}: {failed}", permanent=False) from None
