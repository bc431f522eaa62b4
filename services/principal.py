"""Who is calling: the authenticated city, subject and scopes of one request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cityexchange.services.errors import Forbidden


class Scope(StrEnum):
    READ = "read"
    PUBLISH = "publish"
    COMMENT = "comment"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. `city` always comes from the token's issuer, never from client input."""

    city: str
    subject: str
    scopes: frozenset[str]
    client_id: str
    token_id: str = ""
    expires_at: int = 0  # the token's `exp`: live connections end with it
    issued_at: int = 0  # the token's `iat`: a later revocation of its client or person denies it
    # The organisation the token acts for: its person's, or the one its OAuth client is bound
    # to (services/visibility.py: what the organisation's team memberships let it see).
    organisation: str | None = None
    # False: it acts for several viewers at once (a shared subscription's one execution,
    # schema/sharing.py), so it holds none of its person's own access (services/visibility.py).
    personal: bool = True

    def require(self, scope: Scope) -> None:
        """Raise Forbidden unless the token carries `scope`."""
        if scope.value not in self.scopes:
            raise Forbidden(f"this operation needs the '{scope.value}' scope")

    def require_own_city(self, city: str, what: str) -> None:
        """Raise Forbidden unless `city` is the caller's own city."""
        if city != self.city:
            raise Forbidden(f"only {city} may change this {what}")
