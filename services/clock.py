"""Time as the database stores it: UTC, millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current UTC time truncated to milliseconds, so cursors round-trip exactly."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
