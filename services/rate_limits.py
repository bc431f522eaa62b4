"""Rate limits: hourly budgets of cost points per (city, client), of comments and of
publications per city, and a per-minute budget of requests per address for callers without a
token.

Budgets are fixed windows. A charge is decided in this process, from the window's total as
of the last sync plus what this process spent since, so the hot path is a dictionary
update; every `sync` (about once a second) adds this process's spending to the shared
totals in the database and reads them back. With R replicas, a client can overspend by what
it manages to spend on R - 1 others within one sync interval (docs/security.md).
The per-address budget is per process: it only has to make anonymous floods cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from services.errors import Unavailable
from services.store import rate_limits as store
from services.store.database import Database

log = logging.getLogger("cityexchange.rate_limits")
MAX_TRACKED = 100_000  # keys remembered per window; past it, the oldest go first


class Resource(StrEnum):
    GRAPHQL = "graphql"  # cost points per (city, client)
    COMMENTS = "comments"  # comments per city
    PUBLICATIONS = "publications"  # problems and solutions published per city
    ANONYMOUS = "anonymous"  # requests without a valid token, per address


@dataclass(frozen=True, slots=True)
class Budget:
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Charge:
    """The outcome of charging `cost` to a budget; when refused, nothing was charged."""

    resource: Resource
    allowed: bool
    cost: int
    limit: int
    used: int
    reset_at: int  # epoch seconds when the window ends

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def retry_after(self, now: float) -> int:
        return max(math.ceil(self.reset_at - now), 1)


@dataclass(slots=True)
class _Window:
    shared: int = 0  # every process's spending, as of the last sync
    pending: int = 0  # this process's spending since
    touched: bool = True  # charged (or refused) since the last sync


@dataclass(slots=True)
class RateLimiter:
    budgets: dict[Resource, Budget]
    clock: Callable[[], float] = time.time
    _windows: dict[tuple[Resource, str, int], _Window] = field(
        default_factory=dict[tuple[Resource, str, int], _Window]
    )

    def charge(self, resource: Resource, key: str, cost: int) -> Charge:
        """Spend `cost` of `key`'s budget, unless that would overspend it."""
        budget = self.budgets[resource]
        now = self.clock()
        start = int(now // budget.window_seconds) * budget.window_seconds
        slot = (resource, key, start)
        window = self._windows.get(slot)
        if window is None:
            if len(self._windows) >= MAX_TRACKED:
                self._forget(now, keep_current=len(self._windows) < 2 * MAX_TRACKED)
            window = self._windows[slot] = _Window()
        window.touched = True
        used = window.shared + window.pending
        allowed = used + cost <= budget.limit
        if allowed:
            window.pending += cost
            used += cost
        return Charge(resource, allowed, cost, budget.limit, used, start + budget.window_seconds)

    def refund(self, charge: Charge, key: str) -> None:
        """Give back an allowed charge (a later budget of the same request refused it)."""
        budget = self.budgets[charge.resource]
        start = charge.reset_at - budget.window_seconds
        window = self._windows.get((charge.resource, key, start))
        if charge.allowed and window is not None:
            window.pending -= charge.cost

    async def sync(self, db: Database) -> None:
        """Add this process's spending to the shared totals and read them back."""
        now = self.clock()
        self._forget(now, keep_current=True)
        # Only windows charged since the last sync: an idle key's total is read again on
        # its next use, within one sync.
        shared = [
            (slot, w.pending)
            for slot, w in self._windows.items()
            if w.touched and slot[0] in _SHARED
        ]
        if not shared:
            return
        totals = await store.add_usage(
            db,
            [
                (_document_id(slot), pending, slot[2] + self.budgets[slot[0]].window_seconds)
                for slot, pending in shared
            ],
        )
        for slot, pending in shared:
            window = self._windows.get(slot)
            if window is not None:
                window.touched = False
                window.pending -= pending  # what was charged during the sync stays pending
                window.shared = totals.get(_document_id(slot), window.shared + pending)

    def _forget(self, now: float, *, keep_current: bool) -> None:
        """Drop windows that have ended (and, when memory is short, all of them)."""
        for slot in list(self._windows):
            ended = slot[2] + self.budgets[slot[0]].window_seconds <= now
            if ended or not keep_current:
                del self._windows[slot]


_SHARED = frozenset({Resource.GRAPHQL, Resource.COMMENTS, Resource.PUBLICATIONS})


def _document_id(slot: tuple[Resource, str, int]) -> str:
    resource, key, start = slot
    return f"{resource.value}|{key}|{start}"


async def keep_synced(
    limiter: RateLimiter, db: Database, stopping: asyncio.Event, *, every_seconds: float = 1.0
) -> None:
    """Sync the limiter every `every_seconds` until `stopping` is set; while the database is
    down, budgets are decided from the last totals and this process's own spending."""
    while not stopping.is_set():
        try:
            await limiter.sync(db)
        except Unavailable:
            log.warning("rate-limit totals not synced: the database is unreachable")
        except Exception:
            log.exception("rate-limit sync failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_seconds)
