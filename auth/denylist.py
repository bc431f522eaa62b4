"""Revocation reaches the API: a denylist of token ids, clients and people, cached briefly."""

from __future__ import annotations

import asyncio
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
    _attempted_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _fresh(self) -> dict[str, datetime]:
        """The denylist, re-read at most every REFRESH_SECONDS by one request at a time;
        others use the copy they have meanwhile (or wait for the very first one). Past
        STALE_SECONDS without a fresh copy (the database is down), requests fail closed."""
        never_loaded = self._loaded_at == float("-inf")
        if never_loaded or time.monotonic() - self._attempted_at >= REFRESH_SECONDS:
            if not self._lock.locked():
                async with self._lock:
                    self._attempted_at = time.monotonic()
                    try:
                        self._entries = await store.revocations(self.db)
                        self._loaded_at = time.monotonic()
                    except Unavailable:
                        log.warning(
                            "denylist refresh failed; using the copy from %.0fs ago",
                            time.monotonic() - self._loaded_at,
                        )
            elif never_loaded:
                async with self._lock:  # the first copy is on its way: wait for it
                    pass
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
