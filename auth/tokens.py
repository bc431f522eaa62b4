"""RFC 9068 JWT access tokens: minting for a realm, and validating every request's token."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from joserfc import jws, jwt
from joserfc.errors import JoseError

from cityexchange.auth.denylist import Denylist
from cityexchange.auth.errors import Unauthenticated
from cityexchange.auth.federation import Federation
from cityexchange.auth.realms import Realm, RealmRegistry
from cityexchange.auth.signing_keys import SIGNING_ALG, SigningKey
from cityexchange.auth.verified_tokens import VerifiedTokens
from cityexchange.services.errors import Unavailable
from cityexchange.services.principal import Principal, Scope

# Only asymmetric algorithms we sign with; "none" and HMAC (alg confusion) never pass.
ALLOWED_ALGS = frozenset({SIGNING_ALG})
LEEWAY_SECONDS = 30
KNOWN_SCOPES = frozenset(scope.value for scope in Scope)
# RFC 9068 §2.1: "typ" MUST be "at+jwt"; "application/at+jwt" is the same media type.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_LENGTH = 8192
# The longest-lived access token anything here issues (`token issue --ttl` for operators'
# scripts); a revoked client's or person's denial lasts at least this long, and a token of
# ours that claims a longer lifetime (exp - iat) is refused however well it is signed.
MAX_ACCESS_TOKEN_TTL_SECONDS = 7 * 86_400


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token just minted, as the token endpoint and the CLI hand it out."""

    access_token: str
    expires_in: int
    scope: str
    issuer: str
    jti: str


def parse_scopes(scope: str | Iterable[str]) -> list[str]:
    """Scopes from a space-separated string, unknown ones rejected."""
    values = scope.split() if isinstance(scope, str) else list(scope)
    unknown = sorted(set(values) - KNOWN_SCOPES)
    if unknown:
        raise ValueError(
            f"unknown scope(s) {', '.join(unknown)}; known: {' '.join(sorted(KNOWN_SCOPES))}"
        )
    return list(dict.fromkeys(values))


def sign_access_token(
    key: SigningKey,
    realm: Realm,
    *,
    subject: str,
    scope: str,
    client_id: str,
    audience: str,
    ttl_seconds: int,
    organisation: str | None = None,
) -> IssuedToken:
    """An RFC 9068 access token: `typ: at+jwt`, signed with `key`, identified by `jti`;
    `org` names the organisation it acts for, if any."""
    issued_at = int(time.time())
    jti = secrets.token_urlsafe(16)
    claims = {
        "iss": realm.issuer,
        "sub": subject,
        "aud": audience,
        "exp": issued_at + ttl_seconds,
        "iat": issued_at,
        "jti": jti,
        "client_id": client_id,
        "scope": scope,
    }
    if organisation is not None:
        claims["org"] = organisation
    header = {"alg": SIGNING_ALG, "typ": "at+jwt", "kid": key.kid}
    token = jwt.encode(header, claims, key.key, algorithms=[SIGNING_ALG])
    return IssuedToken(token, ttl_seconds, scope, realm.issuer, jti)


async def issue_access_token(
    registry: RealmRegistry,
    realm: Realm,
    *,
    subject: str,
    scopes: Iterable[str],
    client_id: str,
    audience: str,
    ttl_seconds: int,
    organisation: str | None = None,
) -> IssuedToken:
    """Sign an RFC 9068 access token with the realm's current key."""
    key = await registry.signing_key(realm)
    return sign_access_token(
        key,
        realm,
        subject=subject,
        scope=" ".join(parse_scopes(scopes)),
        client_id=client_id,
        audience=audience,
        ttl_seconds=ttl_seconds,
        organisation=organisation,
    )


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """Validates a bearer token and says which city, subject and scopes it speaks for."""

    registry: RealmRegistry
    audience: str
    denylist: Denylist | None = None
    federation: Federation | None = None
    max_lifetime_seconds: int = MAX_ACCESS_TOKEN_TTL_SECONDS
    verified: VerifiedTokens = field(default_factory=VerifiedTokens)

    async def authenticate(
        self, header: str | None
    ) -> tuple[Principal | None, Unauthenticated | Unavailable | None]:
        """An Authorization header's outcome, kept for the request: its principal, or the
        error its fields will surface (none without a header). Unavailable: the token could
        not be checked, SERVICE_UNAVAILABLE rather than a bad token."""
        if not header:
            return None, None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, Unauthenticated("the Authorization header must be 'Bearer <token>'")
        try:
            return await self.verify(token.strip()), None
        except (Unauthenticated, Unavailable) as exc:
            return None, exc

    async def verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("malformed token")
        hit = self.verified.get(token)
        if hit is not None and self.registry.holds_key(hit.principal.city, hit.kid):
            principal = hit.principal
        else:
            principal = await self._verify(token)
        if self.denylist is not None and await self.denylist.is_denied(principal):
            raise Unauthenticated("token revoked")
        return principal

    async def _verify(self, token: str) -> Principal:
        """Signature and claims; our own realms' tokens are remembered until they expire."""
        try:
            compact = jws.extract_compact(token.encode())
            unverified = json.loads(compact.payload)
        except (JoseError, ValueError, RecursionError):  # RecursionError: JSON nested to death
            raise Unauthenticated("malformed token") from None
        header = compact.protected
        issuer = _claim(unverified, "iss")
        if not isinstance(issuer, str):
            raise Unauthenticated("token has no issuer")
        # The city is decided by the issuer, and the issuer by the key that signed it.
        realm = self.registry.realm_for_issuer(issuer)
        if realm is None:
            trusted = await self.federation.trusted(issuer) if self.federation else None
            if trusted is None or self.federation is None:
                raise Unauthenticated("token issuer is not trusted by any city")
            # Not remembered: who a federated subject speaks for follows an admin's link
            # within seconds (Federation caches that itself).
            return await self.federation.verify(token, header, trusted)
        principal = await self._verify_own(token, header, realm)
        self.verified.put(token, principal, str(header["kid"]))
        return principal

    async def _verify_own(self, token: str, header: dict[str, Any], realm: Realm) -> Principal:
        if header.get("alg") not in ALLOWED_ALGS:
            raise Unauthenticated("token algorithm not accepted")
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise Unauthenticated("not an access token (typ must be at+jwt)")
        kid = header.get("kid")
        key = await self.registry.verification_key(realm, kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("token signed by an unknown key")
        try:
            decoded = jwt.decode(token, key.key, algorithms=list(ALLOWED_ALGS))
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": realm.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
                jti={"essential": True},
                client_id={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise Unauthenticated(_reason(exc)) from None
        claims = decoded.claims
        if int(claims["exp"]) - int(claims["iat"]) > self.max_lifetime_seconds + LEEWAY_SECONDS:
            raise Unauthenticated("token lifetime exceeds the realm's maximum")
        scope = _claim(claims, "scope")
        granted = scope.split() if isinstance(scope, str) else []
        organisation = _claim(claims, "org")
        return Principal(
            city=realm.city,
            subject=str(claims["sub"]),
            scopes=frozenset(granted) & KNOWN_SCOPES,
            client_id=str(claims["client_id"]),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            issued_at=int(claims["iat"]),
            organisation=organisation if isinstance(organisation, str) and organisation else None,
        )


def _claim(claims: object, name: str) -> object:
    """One claim of a decoded payload, or None when the payload is not a JSON object."""
    if not isinstance(claims, dict):
        return None
    return cast(dict[str, object], claims).get(name)


def _reason(exc: JoseError) -> str:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return "token expired"
    if name == "BadSignatureError":
        return "token signature is invalid"
    return f"token rejected: {exc.description or exc.error}"
