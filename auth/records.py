"""What the authorization server stores: clients, codes and refresh tokens, as authlib sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cityexchange.auth.passwords import secret_matches
from cityexchange.services.clock import now


class ClientType(StrEnum):
    CONFIDENTIAL = "confidential"  # a portal back end that can keep a secret
    PUBLIC = "public"  # a mobile app: no secret, PKCE instead


GRANTS = ("authorization_code", "client_credentials", "refresh_token")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A client of one city's realm; implements authlib's ClientMixin."""

    client_id: str
    city: str
    name: str
    type: ClientType
    grants: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    secret_hash: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    # The organisation it acts for (a water utility's portal): its tokens carry `org`.
    organisation: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have; every allowed one when none are asked."""
        if not scope:
            return " ".join(self.scopes)
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # RFC 9700 §2.1: exact string match

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.type is ClientType.PUBLIC:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grants

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials" and self.type is ClientType.PUBLIC:
            return False  # RFC 6749 §4.4: only confidential clients
        return grant_type in self.grants


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """A single-use code; implements authlib's AuthorizationCodeMixin."""

    code_hash: str
    city: str
    client_id: str
    person_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    family: str
    expires_at: datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """An opaque refresh token (stored hashed) in a rotation family."""

    token_hash: str
    city: str
    client_id: str
    person_id: str
    scope: str
    family: str
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    access_jtis: tuple[str, ...] = field(default=())

    def get_scope(self) -> str:
        return self.scope

    def get_client_id(self) -> str:
        return self.client_id

    def check_client(self, client: OAuthClient) -> bool:
        return client.client_id == self.client_id and client.city == self.city

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None

    def is_expired(self) -> bool:
        return self.expires_at <= now()
