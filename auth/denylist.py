"""Revocation reaches the API: a denylist of token ids, clients and people, cached briefly,
and re-checked for every open socket each time it is refreshed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cityexchange.auth import revocations
from cityexchange.services.errors import Unavailable
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database

log = logging.getLogger("cityexchange.auth")

REFRESH_SECONDS = 2.0  # a revocation is seen by every API process within this, plus a query
STALE_SECONDS = 60.0  # past this without a fresh copy, fail closed


@dataclass(eq=False, slots=True)
class _Watch:
    """An open socket's principal, and how to end the socket once it is denied."""

    principal: Principal
    on_denied: Callable[[], None]


@dataclass(slots=True)
class Denylist:
    db: Database
    refresh_seconds: float = REFRESH_SECONDS
    _entries: dict[str, datetime] = field(default_factory=dict[str, datetime])
    _loaded_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _watches: set[_Watch] = field(default_factory=set[_Watch])

    async def keep_fresh(self, stopping: asyncio.Event) -> None:
        """Re-read the denylist every `refresh_seconds` in the background, so that no request
        waits for it (and every replica sees a revocation within seconds)."""
        while not stopping.is_set():
            await self._load()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.refresh_seconds)

    def watch(self, principal: Principal, on_denied: Callable[[], None]) -> Callable[[], None]:
        """Call `on_denied` (once) when a refresh finds `principal` denied: HTTP requests are
        checked one by one, an open socket only here. Returns the function that stops it."""
        entry = _Watch(principal, on_denied)
        self._watches.add(entry)
        return lambda: self._watches.discard(entry)

    async def _load(self) -> None:
        async with self._lock:
            try:
                self._entries = await revocations.entries(self.db)
                self._loaded_at = time.monotonic()
            except Unavailable:
                log.warning(
                    "denylist refresh failed; using the copy from %.0fs ago",
                    time.monotonic() - self._loaded_at,
                )
                return
        for entry in [w for w in self._watches if revocations.denies(self._entries, w.principal)]:
            self._watches.discard(entry)
            entry.on_denied()

    async def _fresh(self) -> dict[str, datetime]:
        """The cached denylist. Before its first copy a request loads it; past STALE_SECONDS
        without a fresh copy (the database is down), requests fail closed."""
        if self._loaded_at == float("-inf"):
            await self._load()
        if time.monotonic() - self._loaded_at > STALE_SECONDS:
            raise Unavailable("cannot check revocations while the database is unreachable")
        return self._entries

    async def is_denied(self, principal: Principal) -> bool:
        """Whether the token was revoked, or its client or person was after it was issued."""
        return revocations.denies(await self._fresh(), principal)
