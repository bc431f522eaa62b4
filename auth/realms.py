"""Each city is an OAuth realm with its own issuer URL and signing keys.

The registry keeps every realm's verification keys in memory. `keep_fresh` re-reads them in
the background; a request never waits for that, it verifies with the keys it has. Only a
token whose `kid` is unknown waits, for one re-read shared by every such request of the
realm, and at most KEY_REFRESH_INTERVAL_SECONDS apart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cityexchange.auth import signing_keys
from cityexchange.auth.signing_keys import SigningKey
from cityexchange.services.errors import Unavailable
from cityexchange.services.store import cities as city_store
from cityexchange.services.store.database import Database

log = logging.getLogger("cityexchange.auth")

# A token with an unknown `kid` makes us re-read the realm's keys, but not more often than
# this (5 times a second per realm): a key rotated a moment ago is found at once, while random
# kids cannot turn every request into a database query.
KEY_REFRESH_INTERVAL_SECONDS = 0.2
# `keep_fresh` re-reads every known realm's keys this often.
KEYS_REFRESH_SECONDS = 60.0
# Keys older than this (no `keep_fresh` running, or the database was down) make a request
# start one background re-read; the request itself still verifies with the keys it has.
KEYS_MAX_AGE_SECONDS = 300.0
STALE_RETRY_SECONDS = 1.0  # while such a re-read fails (the database is down), this apart
# An unknown city re-reads the list of cities (one small query) at most this often (5 per
# second): a city registered a moment ago is found at once, while made-up realms in unsigned
# tokens cannot flood the database.
CITY_MISS_REFRESH_SECONDS = 0.2
_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True, slots=True)
class Realm:
    city: str
    issuer: str


@dataclass(slots=True)
class _RealmKeys:
    """One realm's verification keys, and the one re-read of them that may be running."""

    keys: dict[str, SigningKey] = field(default_factory=dict[str, SigningKey])
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    refreshing: asyncio.Task[None] | None = None


@dataclass(slots=True)
class RealmRegistry:
    """Maps issuers to cities and caches each realm's verification keys."""

    db: Database
    public_url: str
    refresh_seconds: float = KEYS_REFRESH_SECONDS
    max_age_seconds: float = KEYS_MAX_AGE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, _RealmKeys] = field(default_factory=dict[str, _RealmKeys])
    _cities: frozenset[str] = frozenset()
    _cities_at: float = float("-inf")
    _cities_loading: asyncio.Task[None] | None = None

    def realm(self, city: str) -> Realm:
        return Realm(city=city, issuer=f"{self.public_url.rstrip('/')}/realms/{city}")

    def realm_for_issuer(self, issuer: str) -> Realm | None:
        """The realm whose issuer is exactly `issuer`, if it has the shape of ours."""
        prefix = f"{self.public_url.rstrip('/')}/realms/"
        if not issuer.startswith(prefix):
            return None
        city = issuer.removeprefix(prefix)
        if not _SLUG.match(city):
            return None
        return self.realm(city)

    async def verification_key(self, realm: Realm, kid: str) -> SigningKey | None:
        """The realm's key with this id: from memory, or after one shared, rate-limited
        re-read when the id is unknown."""
        entry = self._keys.get(realm.city)
        if entry is not None:
            key = entry.keys.get(kid)
            if key is not None:
                clock = self.clock()
                stale = clock - entry.fetched_at >= self.max_age_seconds
                if stale and clock - entry.attempted_at >= STALE_RETRY_SECONDS:
                    self._refresh(realm.city, entry)  # in the background: not awaited
                return key
            recently = self.clock() - entry.attempted_at < KEY_REFRESH_INTERVAL_SECONDS
            if entry.refreshing is None and recently:
                return None
        elif not await self.has_city(realm.city):
            return None
        entry = self._keys.setdefault(realm.city, _RealmKeys())
        # Shielded: a request that gives up does not cancel the re-read others wait for.
        await asyncio.shield(self._refresh(realm.city, entry))
        return entry.keys.get(kid)

    def holds_key(self, city: str, kid: str) -> bool:
        """Whether the realm's keys in memory include `kid` (no database read)."""
        entry = self._keys.get(city)
        return entry is not None and kid in entry.keys

    def keys_read_at(self, city: str) -> float | None:
        """When (on `clock`) the realm's keys in memory were read; None before the first."""
        entry = self._keys.get(city)
        return entry.fetched_at if entry is not None and entry.fetched_at > float("-inf") else None

    def _refresh(self, city: str, entry: _RealmKeys) -> asyncio.Task[None]:
        """The realm's re-read of its keys: the one running, or a new one."""
        if entry.refreshing is None:
            entry.attempted_at = self.clock()
            task = asyncio.get_running_loop().create_task(self._load(city, entry))
            task.add_done_callback(_log_failure)
            entry.refreshing = task
        return entry.refreshing

    async def _load(self, city: str, entry: _RealmKeys) -> None:
        try:
            keys = await signing_keys.signing_keys(self.db, city)
            entry.keys = {key.kid: key for key in keys}
            entry.fetched_at = self.clock()
        finally:
            entry.refreshing = None

    async def keep_fresh(self, stopping: asyncio.Event) -> None:
        """Re-read every known realm's keys every `refresh_seconds`, in the background and
        one realm at a time, until `stopping` is set."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.refresh_seconds)
            for city, entry in list(self._keys.items()):
                if stopping.is_set():
                    break
                with contextlib.suppress(Unavailable):  # logged; the keys in memory stay
                    await asyncio.shield(self._refresh(city, entry))

    async def has_city(self, city: str) -> bool:
        """Whether `city` is registered. Unsigned tokens can name any realm, so unknown names
        cost at most one query per interval for all of them (shared by every request that
        waits for it), and are never cached."""
        if city in self._cities:
            return True
        if self._cities_loading is None:
            if self.clock() - self._cities_at < CITY_MISS_REFRESH_SECONDS:
                return False
            self._cities_at = self.clock()
            self._cities_loading = asyncio.get_running_loop().create_task(self._load_cities())
        await asyncio.shield(self._cities_loading)
        return city in self._cities

    async def _load_cities(self) -> None:
        try:
            self._cities = await city_store.city_slugs(self.db)
        finally:
            self._cities_loading = None

    async def signing_key(self, realm: Realm) -> SigningKey:
        """The key new tokens of the realm are signed with (read afresh: a rotation counts
        at once)."""
        return await signing_keys.current_signing_key(self.db, realm.city)


def _log_failure(task: asyncio.Task[None]) -> None:
    """A re-read that failed leaves the keys in memory as they were; say so."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not re-read a realm's signing keys; using the keys in memory")
