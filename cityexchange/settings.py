"""One typed settings object, read once at start from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

DEFAULT_DB = "cityexchange"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_AUDIENCE = "cityexchange"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that must not show up in logs or reprs."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True, slots=True)
class Settings:
    mongodb_uri: Secret | None
    db_name: str = DEFAULT_DB
    public_url: str = DEFAULT_PUBLIC_URL
    env: Literal["dev", "prod"] = "dev"
    audience: str = DEFAULT_AUDIENCE
    access_token_ttl_seconds: int = 900
    server_selection_timeout_ms: int = 3000
    operation_timeout_ms: int = 4000
    max_body_bytes: int = 256 * 1024
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    event_retention_days: int = 30
    webhook_retry_seconds: float = 10.0
    embargo_poll_seconds: float = 10.0  # how often embargoed drafts due are published
    drain_seconds: int = 0  # on SIGTERM, not ready for this long before stopping
    # Peers whose X-Forwarded-For/-Proto `serve` believes (addresses or networks); none by
    # default, so a client cannot pick the address sign-in throttling counts it under.
    trusted_proxies: tuple[str, ...] = ()
    # Rate limits (docs/security.md): cost points per (city, client) an hour, writes per city
    # an hour, requests without a token per address a minute.
    rate_limit_points: int = 5_000
    comments_per_hour: int = 300
    publications_per_hour: int = 100
    anonymous_per_minute: int = 120
    # Persisted documents (docs/security.md): OAuth client ids that run registered documents
    # only, and how many new documents one client (or address) may have stored an hour.
    trusted_documents: tuple[str, ...] = ()
    persisted_per_hour: int = 100
    # Mail (cityexchange/mail.py): crisis alerts to each city's CRO contact. None: none sent.
    smtp_url: Secret | None = None
    mail_from: str | None = None  # None: "Peer City Exchange <no-reply@PUBLIC_URL's host>"

    @property
    def sender(self) -> str:
        return self.mail_from or f"Peer City Exchange <no-reply@{self.mail_domain}>"

    @property
    def mail_domain(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"

    # Whether CITYEXCHANGE_PUBLIC_URL was given: if not, `serve` advertises the address it
    # listens on, and admin commands beside it follow (cityexchange/serve.py).
    public_url_configured: bool = False

    @property
    def production(self) -> bool:
        return self.env == "prod"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from CITYEXCHANGE_* variables; raise SettingsError on a bad value."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"CITYEXCHANGE_{name}")
            return value.strip() if value and value.strip() else None

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"CITYEXCHANGE_{name}={raw!r} is not a whole number") from None
            if not low <= value <= high:
                raise SettingsError(f"CITYEXCHANGE_{name} must be between {low} and {high}")
            return value

        uri = get("MONGODB_URI")
        if uri is not None and not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise SettingsError(
                "CITYEXCHANGE_MONGODB_URI must start with mongodb:// or mongodb+srv://"
            )
        mode = get("ENV") or "dev"
        if mode not in ("dev", "prod"):
            raise SettingsError(f"CITYEXCHANGE_ENV={mode!r}: use 'dev' or 'prod'")
        public_url = (get("PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise SettingsError(
                f"CITYEXCHANGE_PUBLIC_URL={public_url!r} is not an http(s) "
                "base URL such as https://exchange.example.org"
            )
        if mode == "prod" and parts.scheme != "https":
            raise SettingsError(
                "CITYEXCHANGE_PUBLIC_URL must be https:// when "
                "CITYEXCHANGE_ENV=prod (it is the base of every token issuer)"
            )
        db_name = get("DB") or DEFAULT_DB
        if any(ch in db_name for ch in '/\\. "$') or len(db_name) > 63:
            raise SettingsError(f"CITYEXCHANGE_DB={db_name!r} is not a valid database name")
        origins = tuple(o.strip() for o in (get("ALLOWED_ORIGINS") or "").split(",") if o.strip())
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"CITYEXCHANGE_LOG_LEVEL={level!r}: use DEBUG, INFO, WARNING or ERROR"
            )
        smtp = get("SMTP_URL")
        if smtp is not None:
            mail_server = urlsplit(smtp)
            if mail_server.scheme not in ("smtp", "smtps") or not mail_server.hostname:
                raise SettingsError(
                    "CITYEXCHANGE_SMTP_URL must be smtp://[user:password@]host[:port] "
                    "or smtps://[user:password@]host[:port]"
                )
        return cls(
            mongodb_uri=Secret(uri) if uri else None,
            db_name=db_name,
            public_url=public_url,
            public_url_configured=get("PUBLIC_URL") is not None,
            env="prod" if mode == "prod" else "dev",
            audience=get("AUDIENCE") or DEFAULT_AUDIENCE,
            access_token_ttl_seconds=integer("ACCESS_TOKEN_TTL", 900, 60, 86_400),
            server_selection_timeout_ms=integer("SERVER_SELECTION_TIMEOUT_MS", 3000, 100, 60_000),
            operation_timeout_ms=integer("OPERATION_TIMEOUT_MS", 4000, 100, 120_000),
            max_body_bytes=integer("MAX_BODY_BYTES", 256 * 1024, 1024, 16 * 1024 * 1024),
            allowed_origins=origins,
            log_level=level,
            event_retention_days=integer("EVENT_RETENTION_DAYS", 30, 1, 3650),
            webhook_retry_seconds=integer("WEBHOOK_RETRY_MS", 10_000, 50, 3_600_000) / 1000,
            embargo_poll_seconds=integer("EMBARGO_POLL_MS", 10_000, 50, 3_600_000) / 1000,
            drain_seconds=integer("DRAIN_SECONDS", 5 if mode == "prod" else 0, 0, 300),
            trusted_proxies=tuple(
                p.strip() for p in (get("TRUSTED_PROXIES") or "").split(",") if p.strip()
            ),
            rate_limit_points=integer("RATE_LIMIT_POINTS", 5_000, 100, 10_000_000),
            comments_per_hour=integer("COMMENTS_PER_HOUR", 300, 1, 1_000_000),
            publications_per_hour=integer("PUBLICATIONS_PER_HOUR", 100, 1, 1_000_000),
            anonymous_per_minute=integer("ANONYMOUS_PER_MINUTE", 120, 1, 1_000_000),
            trusted_documents=tuple(
                c.strip() for c in (get("TRUSTED_DOCUMENTS") or "").split(",") if c.strip()
            ),
            persisted_per_hour=integer("PERSISTED_PER_HOUR", 100, 0, 1_000_000),
            smtp_url=Secret(smtp) if smtp else None,
            mail_from=get("MAIL_FROM"),
        )
