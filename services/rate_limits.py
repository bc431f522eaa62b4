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
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cityexchange.services.errors import Unavailable
from cityexchange.services.store import rate_limits as store
from cityexchange.services.store.database import Database

log = logging.getLogger("cityexchange.rate_limits")
MAX_TRACKED = 100_000  # windows remembered per budget; past it, the oldest go first


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


Windows = dict[tuple[str, int], _Window]  # (key, window start) -> the window, oldest first


@dataclass(slots=True)
class RateLimiter:
    budgets: dict[Resource, Budget]
    clock: Callable[[], float] = time.time
    # One table per budget: its windows all have one length, so insertion order is the order
    # in which they end, and ended ones leave from the front, each once.
    _tables: dict[Resource, Windows] = field(default_factory=dict[Resource, Windows])

    def charge(self, resource: Resource, key: str, cost: int) -> Charge:
        """Spend `cost` of `key`'s budget, unless that would overspend it."""
        budget = self.budgets[resource]
        now = self.clock()
        start = int(now // budget.window_seconds) * budget.window_seconds
        table = self._tables.setdefault(resource, {})
        window = table.get((key, start))
        if window is None:
            _drop_ended(table, budget, now)
            _make_room(table, shared=resource in _SHARED)
            window = table[(key, start)] = _Window()
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
        window = self._tables.get(charge.resource, {}).get((key, start))
        if charge.allowed and window is not None:
            window.pending = max(window.pending - charge.cost, 0)

    async def sync(self, db: Database) -> None:
        """Add this process's spending to the shared totals and read them back."""
        now = self.clock()
        # Only windows charged since the last sync: an idle key's total is read again on
        # its next use, within one sync.
        touched: list[tuple[Resource, tuple[str, int], int]] = []
        for resource in _SHARED:
            table = self._tables.get(resource)
            if table is None:
                continue
            _drop_ended(table, self.budgets[resource], now)
            touched.extend((resource, slot, w.pending) for slot, w in table.items() if w.touched)
        if not touched:
            return
        totals = await store.add_usage(
            db,
            [
                (
                    _document_id(resource, slot),
                    pending,
                    slot[1] + self.budgets[resource].window_seconds,
                )
                for resource, slot, pending in touched
            ],
        )
        for resource, slot, pending in touched:
            window = self._tables[resource].get(slot)
            if window is not None:
                window.touched = False
                window.pending -= pending  # what was charged during the sync stays pending
                window.shared = totals.get(_document_id(resource, slot), window.shared + pending)


def _drop_ended(table: Windows, budget: Budget, now: float) -> None:
    """Drop the windows that have ended: from the front, so each costs O(1) once."""
    while table:
        key, start = next(iter(table))
        if start + budget.window_seconds > now:
            return
        del table[(key, start)]


def _make_room(table: Windows, *, shared: bool) -> None:
    """Keep a table within MAX_TRACKED windows: the oldest go first. A shared budget's window
    goes only once its spending has reached the shared totals (it is read back on next use);
    till then the table may grow, by at most one sync's worth of new keys."""
    while len(table) >= MAX_TRACKED:
        oldest = next(iter(table))
        if shared and table[oldest].pending:
            return
        del table[oldest]


_SHARED = frozenset({Resource.GRAPHQL, Resource.COMMENTS, Resource.PUBLICATIONS})


def _document_id(resource: Resource, slot: tuple[str, int]) -> str:
    key, start = slot
    return f"{resource.value}|{key}|{start}"


async def keep_synced(
    limiter: RateLimiter, db: Database, stopping: asyncio.Event, *, every_seconds: float = 1.0
) -> None:
    """Sync the limiter every `every_seconds` until `stopping` is set; while the database is
    down, budgets are decided from the last totals and this process's own spending."""
    while True:
        try:
            await limiter.sync(db)
        except Unavailable:
            log.warning("rate-limit totals not synced: the database is unreachable")
        except Exception:
            log.exception("rate-limit sync failed; trying again")
        if stopping.is_set():
            return  # after one last sync: what was spent since reaches the other replicas
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_seconds)


def address_key(host: str) -> str:
    """What requests without a token are counted under: the address, or for IPv6 its /64,
    which one subscriber usually holds whole."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
