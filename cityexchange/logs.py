"""Logs: every line on stdout. In production (`CITYEXCHANGE_ENV=prod`) each line is one JSON
object, uvicorn's lines included; in development they are readable text.

Every line carries `request_id` (null outside a request). Each HTTP request ends with one
`request` line: method, path (never the query string), status, duration, and, once known, the
caller's city and client id and the GraphQL operation's name and outcome. Nothing here logs
headers or bodies, and a last processor masks anything shaped like a bearer token or a JWT,
whatever logged it.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REQUEST: ContextVar[dict[str, object] | None] = ContextVar("cityexchange_request_log", default=None)

_SECRET = re.compile(
    r"(?i)\bbearer\s+[\w.~+/=-]+"  # an Authorization header's value
    r"|\beyJ[\w-]*\.[\w-]+\.[\w-]*"  # a JWT (a header starts with base64url '{"')
)
_LOGGERS_OF_OTHERS = ("uvicorn", "uvicorn.error")
# uvicorn's access line is replaced by the app's `request` line, which has the request id and
# leaves out the client's address and the query string.
_SILENCED = ("uvicorn.access",)
# At DEBUG these log what they carry: database commands and replies (keys, secrets, password
# hashes), HTTP exchanges, issued tokens. They stay at INFO whatever the level.
_NEVER_DEBUG = ("pymongo", "httpx", "httpcore", "authlib", "opentelemetry")
# Fields the app passes to stdlib loggers as `extra=` that become JSON fields of the line.
_EXTRA_FIELDS = ("loop", "resource")


def note(**fields: object) -> None:
    """Add fields to the current request's log lines (no-op outside a request)."""
    current = REQUEST.get()
    if current is not None:
        current.update(fields)


def _request_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    current = REQUEST.get()
    if current is None:
        event.setdefault("request_id", None)
    else:
        for key, value in current.items():
            event.setdefault(key, value)
    return event


def _masked(value: object) -> object:
    if isinstance(value, str):
        return _SECRET.sub("[masked]", value)
    return value


def _mask_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        event[key] = _masked(value)
    return event


def configure(*, production: bool, level: str) -> None:
    """Route every logger (the app's, uvicorn's, libraries') to stdout in one format."""
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.stdlib.ExtraAdder(allow=_EXTRA_FIELDS),
        _request_fields,
        structlog.processors.format_exc_info,
        _mask_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if production
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in _LOGGERS_OF_OTHERS:
        other = logging.getLogger(name)
        other.handlers = []
        other.propagate = True
    for name in _SILENCED:
        logging.getLogger(name).disabled = True
    keep_libraries_above_debug()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def keep_libraries_above_debug() -> None:
    """The libraries that would log secrets at DEBUG stay at INFO or above, whatever the
    root level (also for an app whose logging someone else configured)."""
    level = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in _NEVER_DEBUG:
        logging.getLogger(name).setLevel(level)


class Console:
    """What `serve` tells the person who started it: friendly text on stdout in development;
    in production one JSON log line each (`event` and fields), like every other line."""

    def __init__(self, *, production: bool) -> None:
        self.production = production

    def say(self, text: str, event: str | None = None, **fields: object) -> None:
        """Print `text`; in production log `event` (default: `text`) with `fields`."""
        if self.production:
            structlog.stdlib.get_logger("cityexchange.serve").info(event or text.strip(), **fields)
        else:
            print(text, flush=True)


def request_done(status: int, seconds: float) -> None:
    """The one line that ends an HTTP request (its other fields were noted on the way)."""
    note(status=status, duration_ms=round(seconds * 1000, 1))
    logging.getLogger("cityexchange.access").info("request")
