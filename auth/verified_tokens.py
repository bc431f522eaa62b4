"""Tokens whose signature and claims were checked already, kept until they expire, so that a
token is verified once rather than on every request. Only successes are kept, each with the
id of the key that signed it: a hit counts only while its realm still holds that key (a key
retired in an emergency takes its tokens with it). The denylist is not kept: it is checked on
every request, cached or not."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cityexchange.services.principal import Principal

VERIFIED_TOKENS = 10_000


def _digest(token: str) -> bytes:
    """The cache key: no token is kept in memory in the clear."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Verified:
    principal: Principal
    kid: str


@dataclass(slots=True)
class VerifiedTokens:
    """A bounded LRU map from a token's SHA-256 to the principal it was verified as."""

    capacity: int = VERIFIED_TOKENS
    clock: Callable[[], float] = time.time  # wall clock: compared with `exp`
    _entries: OrderedDict[bytes, Verified] = field(default_factory=OrderedDict[bytes, Verified])

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Verified | None:
        """What `token` was verified as, and by which key, while it has not expired."""
        key = _digest(token)
        verified = self._entries.get(key)
        if verified is None:
            return None
        if verified.principal.expires_at <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return verified

    def put(self, token: str, principal: Principal, kid: str) -> None:
        key = _digest(token)
        self._entries[key] = Verified(principal, kid)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
