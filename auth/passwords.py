"""People's passwords, stored as argon2id hashes (RFC 9106), and high-entropy secrets as
SHA-256. Hashes of an older scheme (scrypt, RFC 7914) still verify, and are replaced by an
argon2id hash at the person's next sign-in.

A password hash costs memory on purpose: `HashingGate` bounds how many run at once, so that a
burst of sign-ins cannot exhaust the process (40 parallel scrypt sign-ins once took it from 16
to 1,252 MiB)."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import threading
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

# OWASP Password Storage Cheat Sheet (2025): argon2id with m=19 MiB, t=2, p=1.
MEMORY_KIB = 19 * 1024
_ARGON2 = PasswordHasher(
    time_cost=2, memory_cost=MEMORY_KIB, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # verifying old hashes only (N=2^15, r=8: 32 MiB)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
HASHING_SLOTS = 4  # hashes at once: 4 x 19 MiB at most
HASHING_QUEUE = 16  # sign-ins waiting for a slot; more are answered 429 at once
RETRY_AFTER_SECONDS = 1


class HashingBusy(Exception):
    """Every hashing slot and queue place is taken: try again in a moment."""

    def __init__(self, retry_after_seconds: int = RETRY_AFTER_SECONDS) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__("password hashing is busy")


@dataclass(slots=True)
class HashMeter:
    """How many password hashes are computing now in this process, and the most at once."""

    running: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.running

    def measure(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return fn()
        finally:
            with self._lock:
                self.running -= 1


# Counted in the thread that computes, whoever called: what a test or an operator observes.
HASHES = HashMeter()


@dataclass(slots=True)
class HashingGate:
    """At most `slots` hashes at once, up to `queue` more sign-ins waiting; beyond that,
    `HashingBusy`. One per process (the realms' web endpoints hold it)."""

    slots: int = HASHING_SLOTS
    queue: int = HASHING_QUEUE
    _admitted: int = 0
    _semaphore: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._semaphore = asyncio.Semaphore(self.slots)

    @asynccontextmanager
    async def place(self) -> AsyncGenerator[None]:
        """A place among those that may hash; taken before any other work of a sign-in, so
        a refused one costs nothing (not even a throttle count)."""
        if self._admitted >= self.slots + self.queue:
            raise HashingBusy()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` in a worker thread (anyio's pool, as the web endpoints') once a slot is free."""
        async with self._semaphore:
            return await anyio.to_thread.run_sync(fn)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A self-describing argon2id hash (PHC string format)."""
    return HASHES.measure(lambda: _ARGON2.hash(password[:MAX_PASSWORD_LENGTH]))


@functools.cache
def _dummy() -> str:
    """Verifying against this when the account does not exist keeps the time the same, so the
    response time does not tell which usernames exist."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; always spends one hash computation."""
    candidate = password[:MAX_PASSWORD_LENGTH]
    target = stored or _dummy()
    if target.startswith("scrypt$"):
        return HASHES.measure(lambda: _verify_scrypt(candidate, target))
    try:
        matched = HASHES.measure(lambda: _ARGON2.verify(target, candidate))
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None and matched


def needs_rehash(stored: str) -> bool:
    """Whether `stored` is of an older scheme or cost, to be replaced at the next sign-in."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    """The former scheme: scrypt$N$r$p$salt$hash."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            password.encode()[:MAX_PASSWORD_LENGTH],
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=32,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def hash_secret(secret: str) -> str:
    """SHA-256 of a random secret (client secrets, refresh tokens, codes): enough, since
    the secret itself has 256 bits of entropy; a slow hash would only cost CPU."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(hash_secret(secret), stored)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
