"""Tokens whose signature and claims were checked already, kept until they expire, so that a
token is verified once rather than on every request. Only successes are kept; the denylist
is not: it is checked on every request, cached or not."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from services.principal import Principal

VERIFIED_TOKENS = 10_000


def _digest(token: str) -> bytes:
    """The cache key: no token is kept in memory in the clear."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(slots=True)
class VerifiedTokens:
    """A bounded LRU map from a token's SHA-256 to the principal it was verified as."""

    capacity: int = VERIFIED_TOKENS
    clock: Callable[[], float] = time.time  # wall clock: compared with `exp`
    _entries: OrderedDict[bytes, Principal] = field(default_factory=OrderedDict[bytes, Principal])

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        """The principal `token` was verified as, while it has not expired."""
        key = _digest(token)
        principal = self._entries.get(key)
        if principal is None:
            return None
        if principal.expires_at <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal

    def put(self, token: str, principal: Principal) -> None:
        self._entries[_digest(token)] = principal
        self._entries.move_to_end(_digest(token))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
