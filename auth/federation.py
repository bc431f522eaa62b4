"""Federation: a city may accept tokens from its own identity provider (Azure AD, Keycloak,
Okta, ...). Tokens are checked like ours; the provider's JWKS is fetched asynchronously,
cached, and re-fetched on an unknown `kid` at most once a minute.

A federated principal is (issuer, subject): it speaks for one of the city's people only
through a link a city admin made (`admin.link_federated_subject`), never because its `sub`
happens to equal a person's id. Unlinked, its subject is `<issuer>#<sub>`, which no local id
can equal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cityexchange.auth import federated_links, trusted_issuers
from cityexchange.auth.errors import Unauthenticated
from cityexchange.services.errors import Unavailable
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database

log = logging.getLogger("cityexchange.federation")

FEDERATED_ALGS = ["RS256", "PS256", "ES256"]  # asymmetric only: no "none", no HMAC
FEDERATED_TYPES = frozenset({"", "jwt", "at+jwt", "application/at+jwt"})
ISSUERS_REFRESH_SECONDS = 30.0
JWKS_MAX_AGE_SECONDS = 600.0
JWKS_REFETCH_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 3.0
LEEWAY_SECONDS = 30
# Longest lifetime (exp - iat) accepted from an identity provider: providers issue access
# tokens of minutes to a few hours; a longer one is a misconfiguration or a forgery.
MAX_LIFETIME_SECONDS = 24 * 3600
# An admin's link or unlink (and a federated subject's revocation) is seen within this.
LINK_CACHE_SECONDS = 5.0
LINK_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    issuer: str
    city: str
    jwks_uri: str
    audience: str
    scope_claim: str = "scope"
    subject_claim: str = "sub"

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> TrustedIssuer:
        return cls(
            issuer=doc["_id"],
            city=doc["city"],
            jwks_uri=doc["jwksUri"],
            audience=doc["audience"],
            scope_claim=doc.get("scopeClaim") or "scope",
            subject_claim=doc.get("subjectClaim") or "sub",
        )


@dataclass(slots=True)
class _Keys:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class Federation:
    db: Database
    http: httpx.AsyncClient
    known_scopes: frozenset[str]
    max_lifetime_seconds: int = MAX_LIFETIME_SECONDS
    _links: dict[str, tuple[str | None, float]] = field(
        default_factory=dict[str, tuple[str | None, float]]
    )
    _issuers: dict[str, TrustedIssuer] = field(default_factory=dict[str, TrustedIssuer])
    _issuers_at: float = float("-inf")
    _keys: dict[str, _Keys] = field(default_factory=dict[str, _Keys])
    _tasks: set[asyncio.Task[None]] = field(default_factory=set[asyncio.Task[None]])

    async def trusted(self, issuer: str) -> TrustedIssuer | None:
        if time.monotonic() - self._issuers_at >= ISSUERS_REFRESH_SECONDS:
            await self._reload_issuers()
        return self._issuers.get(issuer)

    async def _reload_issuers(self) -> dict[str, TrustedIssuer]:
        try:
            docs = await trusted_issuers.trusted_issuers(self.db)
            self._issuers = {d["_id"]: TrustedIssuer.from_doc(d) for d in docs}
            self._issuers_at = time.monotonic()
        except Unavailable:
            log.warning("could not reload trusted issuers; using the cached list")
        return self._issuers

    async def _fetch(self, trusted: TrustedIssuer, entry: _Keys) -> None:
        entry.attempted_at = time.monotonic()
        try:
            response = await self.http.get(trusted.jwks_uri, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            entry.keys = KeySet.import_key_set(response.json())
            entry.fetched_at = time.monotonic()
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            log.warning(
                "JWKS of %s (%s) unreachable: %s; its tokens are refused until it answers",
                trusted.issuer,
                trusted.jwks_uri,
                type(exc).__name__,
            )

    async def _key_set(self, trusted: TrustedIssuer, kid: str | None) -> KeySet | None:
        """Keys from the cache only: requests never wait for an identity provider. A stale
        cache or an unknown kid schedules a refetch (at most once a minute) in the background."""
        entry = self._keys.setdefault(trusted.issuer, _Keys())
        known = entry.keys is not None and (
            kid is None or any(k.kid == kid for k in entry.keys.keys)
        )
        if not known or time.monotonic() - entry.fetched_at >= JWKS_MAX_AGE_SECONDS:
            self._refresh_later(trusted, entry)
        return entry.keys if known else None

    async def _refresh(self, trusted: TrustedIssuer, entry: _Keys) -> None:
        async with entry.lock:
            if time.monotonic() - entry.attempted_at >= JWKS_REFETCH_SECONDS:
                await self._fetch(trusted, entry)

    def _refresh_later(self, trusted: TrustedIssuer, entry: _Keys) -> None:
        if entry.lock.locked() or time.monotonic() - entry.attempted_at < JWKS_REFETCH_SECONDS:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(trusted, entry))
        self._tasks.add(task)  # a reference, or the task may be collected mid-flight
        task.add_done_callback(self._tasks.discard)

    async def keep_fresh(self, stopping: asyncio.Event) -> None:
        """Fetch every trusted issuer's keys at start, then keep them fresh, so that tokens
        of a newly trusted provider are accepted without any request waiting for its JWKS."""
        while not stopping.is_set():
            self._issuers_at = float("-inf")  # re-read the trusted issuers
            for trusted in list((await self._reload_issuers()).values()):
                entry = self._keys.setdefault(trusted.issuer, _Keys())
                if time.monotonic() - entry.fetched_at >= JWKS_MAX_AGE_SECONDS:
                    await self._refresh(trusted, entry)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), ISSUERS_REFRESH_SECONDS)

    async def verify(
        self, token: str, header: Mapping[str, Any], trusted: TrustedIssuer
    ) -> Principal:
        """A principal of the trusted issuer's city, after the same checks as our tokens."""
        if header.get("alg") not in FEDERATED_ALGS:
            raise Unauthenticated("token algorithm not accepted")
        if str(header.get("typ", "")).lower() not in FEDERATED_TYPES:
            raise Unauthenticated("not an access token")
        kid = header.get("kid")
        keys = await self._key_set(trusted, kid if isinstance(kid, str) else None)
        if keys is None:
            raise Unauthenticated("the identity provider's keys are unavailable")
        try:
            decoded = jwt.decode(token, keys, algorithms=FEDERATED_ALGS)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": trusted.issuer},
                aud={"essential": True, "value": trusted.audience},
                exp={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise Unauthenticated(f"token rejected: {exc.description or exc.error}") from None
        claims: dict[str, Any] = decoded.claims
        issued_at = claims.get("iat")
        # Without `iat`, what is left of its lifetime must fit the cap.
        issued = int(issued_at) if isinstance(issued_at, int | float) else None
        start = issued if issued is not None else int(time.time())
        if int(claims["exp"]) - start > self.max_lifetime_seconds + LEEWAY_SECONDS:
            raise Unauthenticated("token lifetime exceeds the maximum accepted")
        if "nonce" in claims or "at_hash" in claims:
            raise Unauthenticated("an ID token is not an access token")
        subject = claims.get(trusted.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated(f"token has no '{trusted.subject_claim}' claim")
        raw = claims.get(trusted.scope_claim, "")
        if isinstance(raw, str):
            granted = raw.split()
        elif isinstance(raw, list):
            granted = [str(s) for s in cast(list[Any], raw)]
        else:
            granted = []
        client = claims.get("client_id") or claims.get("azp") or claims.get("appid") or ""
        person = await self._linked_person(trusted, subject)
        return Principal(
            city=trusted.city,
            subject=person or federated_links.federated_key(trusted.issuer, subject),
            scopes=frozenset(granted) & self.known_scopes,
            client_id=str(client) or trusted.issuer,
            token_id=str(claims.get("jti", "")),
            expires_at=int(claims["exp"]),
            # No `iat`: any revocation of its client or person denies it.
            issued_at=issued or 0,
        )

    async def _linked_person(self, trusted: TrustedIssuer, subject: str) -> str | None:
        """The person an admin linked to (issuer, subject), cached for LINK_CACHE_SECONDS."""
        key = federated_links.federated_key(trusted.issuer, subject)
        cached = self._links.get(key)
        clock = time.monotonic()
        if cached is not None and clock - cached[1] < LINK_CACHE_SECONDS:
            return cached[0]
        person = await federated_links.linked_person(
            self.db, city=trusted.city, issuer=trusted.issuer, subject=subject
        )
        if len(self._links) >= LINK_CACHE_ENTRIES:
            self._links.clear()  # only signed tokens get here: a bound, not an eviction policy
        self._links[key] = (person, clock)
        return person
