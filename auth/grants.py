# authlib's grant classes are untyped: this module, which subclasses them, is checked in
# basic mode.
# pyright: basic
"""The realm servers' grants (RFC 6749 §4.1 authorization code with PKCE, §4.4 client
credentials, §6 refresh with rotation) and the rules they add to authlib's."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError, OAuth2Request
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge

from cityexchange.auth.oauth_requests import form_data
from cityexchange.auth.passwords import hash_secret
from cityexchange.auth.records import AuthorizationCode, ClientType, OAuthClient, RefreshToken
from cityexchange.auth.resource_owners import ResourceOwner
from cityexchange.services.clock import now

if TYPE_CHECKING:
    from cityexchange.auth.realm_server import RealmServer

CODE_TTL_SECONDS = 60  # RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes"
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
SECRET_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class StrictPKCE(CodeChallenge):
    """PKCE per RFC 9700 §2.1.1: S256 only, and required of public clients at /authorize."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - authlib's class attribute

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request: OAuth2Request = grant.request
        data = form_data(request)
        client = cast(OAuthClient, request.client)
        if not data.get("code_challenge") and client.type is ClientType.PUBLIC:
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256"
            )
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _ClientScopes:
    """RFC 6749 §3.3: a scope beyond what the client is registered for is invalid_scope
    (rather than silently narrowed), so a misconfigured client learns it at once."""

    request: OAuth2Request

    def validate_requested_scope(self) -> None:
        super().validate_requested_scope()  # type: ignore[misc]
        client = cast(OAuthClient | None, self.request.client)
        asked = set(str(form_data(self.request).get("scope") or "").split())
        if client is not None and asked - set(client.scopes):
            extra = " ".join(sorted(asked - set(client.scopes)))
            raise InvalidScopeError(f"this client may not ask for: {extra}")


class CredentialsGrant(_ClientScopes, ClientCredentialsGrant):
    # RFC 6749 §2.3.1: both ways of sending the secret; the metadata advertises both.
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH_METHODS


class CodeGrant(_ClientScopes, AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: RealmServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = form_data(request)
        owner = cast(ResourceOwner, request.user)
        scope = owner.allowed(request.scope or "")
        if not scope:
            raise AccessDeniedError("none of the requested scopes is open to this person")
        self.server.store.save_code(
            AuthorizationCode(
                code_hash=hash_secret(code),
                city=self.server.realm.city,
                client_id=cast(OAuthClient, request.client).client_id,
                person_id=owner.person_id,
                redirect_uri=data.get("redirect_uri") or "",
                scope=scope,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                family=secrets.token_urlsafe(16),
                expires_at=now() + timedelta(seconds=CODE_TTL_SECONDS),
            )
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        store, city = self.server.store, self.server.realm.city
        first, replayed = store.claim_code(city, hash_secret(code), client.client_id)
        if replayed is not None:
            # RFC 6749 §4.1.2: on a second use the server SHOULD revoke (when possible) all
            # tokens previously issued based on that authorization code.
            store.revoke_family(city, replayed.family)
            return None
        if first is None or first.expires_at <= now():
            return None
        return first

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        pass  # claimed (marked used) atomically by query_authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode) -> ResourceOwner | None:
        return self.server.resource_owner(authorization_code.person_id)


# Refreshes of one token family within one access-token lifetime: a client refreshes once per
# lifetime (the web app's tabs share one family); a loop is refused until its tokens expire.
# Each refresh stores a refresh token for 30 days: this bounds what one sign-in can store.
MAX_REFRESHES_PER_LIFETIME = 30


class SlowDown(OAuth2Error):
    """Too many refreshes: HTTP 429 with RFC 8628's `slow_down`, the refresh token unspent."""

    error = "slow_down"
    status_code = 429


class RotatingRefreshGrant(RefreshTokenGrant):
    """Refresh tokens rotate on every use; reusing a rotated one revokes its whole family
    (RFC 9700 §4.14.2). A family refreshed more than MAX_REFRESHES_PER_LIFETIME times within
    one access-token lifetime is told to slow down, its token not spent."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: RealmServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        store, city = self.server.store, self.server.realm.city
        token = store.find_refresh_token(city, hash_secret(refresh_token))
        if token is None or token.is_expired():
            return None
        client = cast(OAuthClient | None, self.request.client)
        if client is None or token.client_id != client.client_id:
            return None  # another client's token: refused without spending it
        if store.family_live_tokens(token.family) >= MAX_REFRESHES_PER_LIFETIME:
            raise SlowDown("refreshed too often: use the access token you have, then refresh")
        if (
            token.is_revoked()
            or store.family_revoked(token.family)
            or not store.rotate_refresh_token(token.token_hash)
        ):
            # RFC 9700 §4.14.2: reuse of a rotated refresh token revokes the whole family.
            store.revoke_family(city, token.family)
            return None
        owner = self.server.resource_owner(token.person_id)
        # The person's role today bounds what a refresh may carry.
        return replace(token, scope=owner.allowed(token.scope)) if owner else None

    def authenticate_user(self, refresh_token: RefreshToken) -> ResourceOwner | None:
        return self.server.resource_owner(refresh_token.person_id)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        pass  # rotated atomically by authenticate_refresh_token
