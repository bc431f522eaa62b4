"""PyMongo command monitoring, reported to whoever wants to count round trips."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from pymongo import monitoring

# Who a command is for: the request being served, or the process's own background work
# (change stream, webhook deliveries, index creation). Listeners run in the caller's task, so
# they see the caller's value.
ORIGIN: ContextVar[str] = ContextVar("cityexchange_db_origin", default="background")


class CommandCounter(monitoring.CommandListener):
    """Reports every command PyMongo sends, a getMore included: each is one round trip."""

    def __init__(self, started: Callable[[str, str], None], failed: Callable[[str], None]) -> None:
        self._started = started
        self._failed = failed

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self._started(event.command_name, ORIGIN.get())

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._failed(event.command_name)
