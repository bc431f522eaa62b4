"""What a request's token check keeps in memory: the realms' verification keys (refreshed in
the background, one re-read at a time) and tokens verified already (until they expire, with
the denylist still asked every time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from cityexchange.auth import revocations, signing_keys
from cityexchange.auth.denylist import Denylist
from cityexchange.auth.errors import Unauthenticated
from cityexchange.auth.realms import (
    CITY_MISS_REFRESH_SECONDS,
    KEY_REFRESH_INTERVAL_SECONDS,
    RealmRegistry,
)
from cityexchange.auth.tokens import TokenVerifier, sign_access_token
from cityexchange.auth.verified_tokens import VerifiedTokens
from cityexchange.services.clock import now
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.store.monitoring import CommandCounter
from cityexchange.settings import Settings
from tests.conftest import add_city
from tests.oauth_support import store_for

CONCURRENT = 200


@dataclass
class FakeClock:
    """A monotonic clock the test moves: cache ages without waiting for them."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Commands:
    """Every command the counted client sends, by name."""

    names: list[str] = field(default_factory=list[str])

    def started(self, name: str, _origin: str) -> None:
        self.names.append(name)

    def failed(self, _name: str) -> None:
        pass

    def finds(self) -> int:
        return self.names.count("find")


@pytest.fixture
async def counted(settings: Settings, db: Database) -> AsyncIterator[tuple[Database, Commands]]:
    """A second client on the test's database, whose commands are counted."""
    assert settings.mongodb_uri is not None
    commands = Commands()
    counted_db = Database.connect(
        settings.mongodb_uri.value,
        settings.db_name,
        server_selection_timeout_ms=3000,
        timeout_ms=30_000,
        listeners=[CommandCounter(commands.started, commands.failed)],
    )
    yield counted_db, commands
    await counted_db.close()


def _token(registry: RealmRegistry, key: signing_keys.SigningKey, subject: str) -> str:
    return sign_access_token(
        key,
        registry.realm(key.city),
        subject=subject,
        scope="read",
        client_id="tests",
        audience="cityexchange-api",
        ttl_seconds=600,
    ).access_token


async def _key_read(registry: RealmRegistry, city: str, after: float) -> None:
    """Wait (bounded) until the realm's keys were read at or after `after`."""
    async with asyncio.timeout(10):
        while (registry.keys_read_at(city) or float("-inf")) < after:
            await asyncio.sleep(0.01)


async def test_concurrent_verifications_across_the_keys_expiry_read_them_once(
    db: Database, counted: tuple[Database, Commands]
) -> None:
    counted_db, commands = counted
    await add_city(db, "rotterdam")
    key = await signing_keys.current_signing_key(db, "rotterdam")
    clock = FakeClock()
    registry = RealmRegistry(counted_db, "http://localhost:8000", clock=clock)
    verifier = TokenVerifier(registry, "cityexchange-api")
    await verifier.verify(_token(registry, key, "warm-up"))  # the keys are in memory now
    commands.names.clear()

    clock.now += registry.max_age_seconds + 1  # the keys in memory are now too old
    tokens = [_token(registry, key, f"person-{n}") for n in range(CONCURRENT)]
    principals = await asyncio.gather(*(verifier.verify(t) for t in tokens))

    assert [p.subject for p in principals] == [f"person-{n}" for n in range(CONCURRENT)]
    await _key_read(registry, "rotterdam", after=clock.now)  # the one background re-read
    assert commands.finds() == 1, commands.names


async def test_an_unknown_kid_waits_for_one_shared_rate_limited_re_read(
    db: Database, counted: tuple[Database, Commands]
) -> None:
    counted_db, commands = counted
    await add_city(db, "rotterdam")
    old = await signing_keys.current_signing_key(db, "rotterdam")
    clock = FakeClock()
    registry = RealmRegistry(counted_db, "http://localhost:8000", clock=clock)
    verifier = TokenVerifier(registry, "cityexchange-api")
    await verifier.verify(_token(registry, old, "warm-up"))
    rotated = await signing_keys.add_signing_key(db, "rotterdam")  # as another replica would
    clock.now += KEY_REFRESH_INTERVAL_SECONDS
    commands.names.clear()

    tokens = [_token(registry, rotated, f"person-{n}") for n in range(CONCURRENT)]
    principals = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert len(principals) == CONCURRENT
    assert commands.finds() == 1, commands.names

    # Within the interval, a kid that is still unknown costs no query at all...
    forged = signing_keys.new_signing_key("rotterdam")
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(_token(registry, forged, "forger"))
    assert commands.finds() == 1
    # ...and past it, one more.
    clock.now += KEY_REFRESH_INTERVAL_SECONDS
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(_token(registry, forged, "forger"))
    assert commands.finds() == 2


async def test_keep_fresh_re_reads_the_keys_in_the_background(
    db: Database, counted: tuple[Database, Commands]
) -> None:
    counted_db, _ = counted
    await add_city(db, "rotterdam")
    key = await signing_keys.current_signing_key(db, "rotterdam")
    registry = RealmRegistry(counted_db, "http://localhost:8000", refresh_seconds=0.05)
    await TokenVerifier(registry, "cityexchange-api").verify(_token(registry, key, "warm-up"))
    first = registry.keys_read_at("rotterdam")
    assert first is not None
    stopping = asyncio.Event()
    loop = asyncio.create_task(registry.keep_fresh(stopping))
    try:
        await _key_read(registry, "rotterdam", after=first + 0.04)  # no request asked
    finally:
        stopping.set()
        await loop


async def test_a_revoked_token_stops_working_although_its_verification_is_cached(
    settings: Settings, db: Database
) -> None:
    await add_city(db, "rotterdam")
    key = await signing_keys.current_signing_key(db, "rotterdam")
    registry = RealmRegistry(db, "http://localhost:8000")
    denylist = Denylist(db, refresh_seconds=0.05)
    verifier = TokenVerifier(registry, "cityexchange-api", denylist=denylist)
    token = _token(registry, key, "person-1")
    principal = await verifier.verify(token)
    assert len(verifier.verified) == 1  # verified once, remembered
    assert await verifier.verify(token) == principal

    store = store_for(settings)
    stopping = asyncio.Event()
    refreshing = asyncio.create_task(denylist.keep_fresh(stopping))
    try:
        await asyncio.to_thread(
            revocations.deny,
            store.db,
            "jti",
            "rotterdam",
            principal.token_id,
            at=now(),
            ttl=600,
        )
        async with asyncio.timeout(10):
            while not await denylist.is_denied(principal):  # this replica has seen it
                await asyncio.sleep(0.02)
        with pytest.raises(Unauthenticated, match="revoked"):
            await verifier.verify(token)  # the very next request, cached or not
    finally:
        stopping.set()
        await refreshing
        store.close()


async def test_a_cached_token_goes_with_its_retired_key(db: Database) -> None:
    await add_city(db, "rotterdam")
    key = await signing_keys.current_signing_key(db, "rotterdam")
    clock = FakeClock()
    registry = RealmRegistry(db, "http://localhost:8000", clock=clock)
    verifier = TokenVerifier(registry, "cityexchange-api")
    token = _token(registry, key, "person-1")
    await verifier.verify(token)  # remembered
    for _ in range(signing_keys.VERIFYING_KEYS):  # rotated until the key no longer verifies
        await signing_keys.add_signing_key(db, "rotterdam")
    clock.now += registry.max_age_seconds + 1
    await verifier.verify(
        _token(registry, await signing_keys.current_signing_key(db, "rotterdam"), "p2")
    )
    await _key_read(registry, "rotterdam", after=clock.now)
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(token)


async def test_a_failed_verification_is_not_remembered(db: Database) -> None:
    key = await signing_keys.current_signing_key(db, "atlantis")  # no such city, yet
    clock = FakeClock()
    registry = RealmRegistry(db, "http://localhost:8000", clock=clock)
    verifier = TokenVerifier(registry, "cityexchange-api")
    token = _token(registry, key, "person-1")
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)
    assert len(verifier.verified) == 0

    await add_city(db, "atlantis")
    clock.now += CITY_MISS_REFRESH_SECONDS
    assert (await verifier.verify(token)).city == "atlantis"  # the same token, checked afresh


def _principal(n: int, expires_at: int) -> Principal:
    return Principal(
        city="rotterdam", subject=f"p{n}", scopes=frozenset(), client_id="c", expires_at=expires_at
    )


def test_verified_tokens_are_bounded_least_recently_used_first_and_expire() -> None:
    wall = FakeClock(now=time.time())
    cache = VerifiedTokens(capacity=2, clock=wall)
    later = int(wall.now) + 600
    cache.put("a", _principal(1, later), "k")
    cache.put("b", _principal(2, later), "k")
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", _principal(3, later), "k")
    assert cache.get("b") is None  # the least recently used went
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2

    wall.now = later  # `exp` reached
    assert cache.get("a") is None
    assert len(cache) == 1
