# authlib's endpoint classes are untyped: this module, which subclasses them, is checked in
# basic mode.
# pyright: basic
"""The realm servers' token revocation (RFC 7009) and introspection (RFC 7662) endpoints,
and how they recognise the token a client presents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jws, jwt
from joserfc.errors import JoseError

from cityexchange.auth import revocations, signing_keys
from cityexchange.auth.grants import ALL_AUTH_METHODS, SECRET_AUTH_METHODS
from cityexchange.auth.passwords import hash_secret
from cityexchange.auth.records import OAuthClient
from cityexchange.auth.signing_keys import SIGNING_ALG
from cityexchange.services.clock import now
from cityexchange.services.principal import Principal

if TYPE_CHECKING:
    from cityexchange.auth.realm_server import RealmServer


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A token presented to revocation or introspection, whichever kind it is."""

    kind: str  # "access_token" or "refresh_token"
    city: str
    client_id: str
    subject: str
    scope: str
    issued_at: int
    expires_at: int
    jti: str | None
    family: str | None
    revoked: bool
    issuer: str
    audience: str | None

    def check_client(self, client: OAuthClient) -> bool:
        return client.city == self.city and client.client_id == self.client_id

    def is_expired(self) -> bool:
        return self.expires_at <= int(now().timestamp())

    def is_revoked(self) -> bool:
        return self.revoked


def find_presented_token(
    server: RealmServer, token_string: str, hint: str | None
) -> PresentedToken | None:
    """A token of this realm: a JWT access token we signed, or a stored refresh token."""
    if hint != "refresh_token" and token_string.count(".") == 2:
        found = _access_token(server, token_string)
        if found is not None or hint == "access_token":
            return found
    city = server.realm.city
    refresh = server.store.find_refresh_token(city, hash_secret(token_string))
    if refresh is None:
        return None
    return PresentedToken(
        kind="refresh_token",
        city=refresh.city,
        client_id=refresh.client_id,
        subject=refresh.person_id,
        scope=refresh.scope,
        issued_at=0,
        expires_at=int(refresh.expires_at.timestamp()),
        jti=None,
        family=refresh.family,
        revoked=refresh.is_revoked(),
        issuer=server.realm.issuer,
        audience=None,
    )


def _access_token(server: RealmServer, token_string: str) -> PresentedToken | None:
    realm, db = server.realm, server.store.db
    try:
        header = jws.extract_compact(token_string.encode()).protected
        keys = {k.kid: k for k in signing_keys.signing_keys_sync(db, realm.city)}
        key = keys.get(str(header.get("kid")))
        if key is None or header.get("typ") != "at+jwt":
            return None
        claims = jwt.decode(token_string, key.key, algorithms=[SIGNING_ALG]).claims
    except (JoseError, ValueError):
        return None
    if claims.get("iss") != realm.issuer:
        return None  # a token of another realm is never this realm's
    principal = Principal(
        city=realm.city,
        subject=str(claims["sub"]),
        scopes=frozenset(),
        client_id=str(claims["client_id"]),
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        issued_at=int(claims["iat"]),
    )
    return PresentedToken(
        kind="access_token",
        city=realm.city,
        client_id=principal.client_id,
        subject=principal.subject,
        scope=str(claims.get("scope", "")),
        issued_at=principal.issued_at,
        expires_at=principal.expires_at,
        jti=principal.token_id,
        family=None,
        revoked=revocations.is_denied_sync(db, principal),
        issuer=realm.issuer,
        audience=str(claims.get("aud")),
    )


def revoke_presented_token(server: RealmServer, token: PresentedToken) -> None:
    """RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens of the
    same grant; revoking an access token puts its jti on the denylist."""
    city = server.realm.city
    if token.kind == "refresh_token" and token.family:
        server.store.revoke_family(city, token.family)
    elif token.jti:
        ttl = max(token.expires_at - int(now().timestamp()), 0)
        revocations.deny(server.store.db, "jti", city, token.jti, at=now(), ttl=ttl)


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS
    server: RealmServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_presented_token(self.server, token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request: OAuth2Request) -> None:
        revoke_presented_token(self.server, token)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = SECRET_AUTH_METHODS
    server: RealmServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_presented_token(self.server, token_string, token_type_hint)

    def check_permission(
        self, token: PresentedToken, client: OAuthClient, request: OAuth2Request
    ) -> bool:
        return client.city == self.server.realm.city  # clients of this realm only

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "active": True,
            "scope": token.scope,
            "client_id": token.client_id,
            "sub": token.subject,
            "iss": token.issuer,
            "exp": token.expires_at,
        }
        if token.kind == "access_token":
            answer.update(
                token_type="Bearer",  # noqa: S106 - a token type, not a password
                aud=token.audience,
                iat=token.issued_at,
                jti=token.jti,
            )
        return answer
