"""Revocation reaches the API: a denylist of token ids, clients and people, cached briefly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from auth import store
from services.errors import Unavailable
from services.principal import Principal
from services.store.database import Database

log = logging.getLogger("cityexchange.auth")

REFRESH_SECONDS = 2.0  # a revocation is seen by every API process within this, plus a query
STALE_SECONDS = 60.0  # past this without a fresh copy, fail closed


@dataclass(slots=True)
class Denylist:
    db: Database
    _entries: dict[str, datetime] = field(default_factory=dict[str, datetime])
    _loaded_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def keep_fresh(self, stopping: asyncio.Event) -> None:
        """Re-read the denylist every REFRESH_SECONDS in the background, so that no request
        waits for it (and every replica sees a revocation within seconds)."""
        while not stopping.is_set():
            await self._load()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), REFRESH_SECONDS)

    async def _load(self) -> None:
        async with self._lock:
            try:
                self._entries = await store.revocations(self.db)
                self._loaded_at = time.monotonic()
            except Unavailable:
                log.warning(
                    "denylist refresh failed; using the copy from %.0fs ago",
                    time.monotonic() - self._loaded_at,
                )

    async def _fresh(self) -> dict[str, datetime]:
        """The cached denylist. Before its first copy a request loads it; past STALE_SECONDS
        without a fresh copy (the database is down), requests fail closed."""
        if self._loaded_at == float("-inf"):
            await self._load()
        if time.monotonic() - self._loaded_at > STALE_SECONDS:
            raise Unavailable("cannot check revocations while the database is unreachable")
        return self._entries

    async def is_denied(self, principal: Principal, issued_at: int) -> bool:
        """Whether the token was revoked, or its client or person was after it was issued."""
        entries = await self._fresh()
        city = principal.city
        if f"jti:{city}:{principal.token_id}" in entries:
            return True
        for key in (f"client:{city}:{principal.client_id}", f"person:{city}:{principal.subject}"):
            revoked_at = entries.get(key)
            if revoked_at is not None and revoked_at.timestamp() >= issued_at:
                return True
        return False
