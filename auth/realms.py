"""Each city is an OAuth realm with its own issuer URL and signing keys."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from auth import store
from auth.store import SigningKey
from services.store.database import Database

# A token with an unknown `kid` makes us re-read the realm's keys, but not more often than
# this (5 times a second per realm): a key rotated a moment ago is found at once, while random
# kids cannot turn every request into a database query.
KEY_REFRESH_INTERVAL_SECONDS = 0.2
KEY_CACHE_SECONDS = 300.0
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
class _CachedKeys:
    keys: dict[str, SigningKey]
    fetched_at: float


@dataclass(slots=True)
class RealmRegistry:
    """Maps issuers to cities and caches each realm's verification keys."""

    db: Database
    public_url: str
    _keys: dict[str, _CachedKeys] = field(default_factory=dict[str, _CachedKeys])
    _cities: frozenset[str] = frozenset()
    _cities_at: float = float("-inf")

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
        """The realm's key with this id, from cache, re-read at a bounded rate."""
        cached = self._keys.get(realm.city)
        clock = time.monotonic()
        if cached is not None:
            age = clock - cached.fetched_at
            key = cached.keys.get(kid)
            if (key is not None and age < KEY_CACHE_SECONDS) or age < KEY_REFRESH_INTERVAL_SECONDS:
                return key
        if not await self._is_city(realm.city):
            return None
        keys = await store.signing_keys(self.db, realm.city)
        self._keys[realm.city] = _CachedKeys({k.kid: k for k in keys}, clock)
        return self._keys[realm.city].keys.get(kid)

    async def _is_city(self, city: str) -> bool:
        """Whether `city` is registered. Unsigned tokens can name any realm, so unknown names
        cost at most one query per interval for all of them, and are never cached."""
        clock = time.monotonic()
        if city not in self._cities and clock - self._cities_at >= CITY_MISS_REFRESH_SECONDS:
            self._cities = await store.city_slugs(self.db)
            self._cities_at = clock
        return city in self._cities

    async def signing_key(self, realm: Realm) -> SigningKey:
        return await store.current_signing_key(self.db, realm.city)
