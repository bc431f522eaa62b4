# authlib's server classes are untyped: strict checking would only restate that, so this
# module, the one that subclasses them, is checked in basic mode.
# pyright: basic
"""One authlib authorization server per city realm, with its grants (auth/grants.py) and
endpoints (auth/endpoints.py). Synchronous by authlib's design: callers run it in a thread
pool."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationServer, InvalidGrantError, OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc import jws

from cityexchange.auth import signing_keys, web_app_clients
from cityexchange.auth.endpoints import Introspection, Revocation
from cityexchange.auth.grants import (
    ALL_AUTH_METHODS,
    SECRET_AUTH_METHODS,
    CodeGrant,
    CredentialsGrant,
    RotatingRefreshGrant,
    StrictPKCE,
)
from cityexchange.auth.oauth_requests import FormRequest, OAuthResponse
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.passwords import hash_secret
from cityexchange.auth.realms import Realm
from cityexchange.auth.records import GRANTS, OAuthClient, RefreshToken
from cityexchange.auth.resource_owners import ResourceOwner
from cityexchange.auth.tokens import KNOWN_SCOPES, sign_access_token
from cityexchange.services.clock import now
from cityexchange.services.store import people

REFRESH_TTL_DAYS = 30


@dataclass(frozen=True, slots=True)
class Consent:
    """A validated authorization request, waiting for the person's sign-in and consent."""

    client: OAuthClient
    scope: str
    grant: Any


class RealmServer(AuthorizationServer):
    """The authorization server of one city's realm."""

    def __init__(
        self,
        *,
        realm: Realm,
        store: OAuthStore,
        audience: str,
        access_ttl_seconds: int,
        web_app_redirect_uris: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scopes_supported=sorted(KNOWN_SCOPES))
        self.realm = realm
        self.store = store
        self.web_app_redirect_uris = web_app_redirect_uris
        self.audience = audience
        self.access_ttl_seconds = access_ttl_seconds
        generator: Any = BearerTokenGenerator
        self.register_token_generator(
            "default",
            generator(
                access_token_generator=self._access_token,
                refresh_token_generator=lambda **_: secrets.token_urlsafe(48),  # pyright: ignore[reportUnknownLambdaType]
                expires_generator=lambda *_: self.access_ttl_seconds,  # pyright: ignore[reportUnknownLambdaType]
            ),
        )
        self.register_grant(CredentialsGrant)
        self.register_grant(CodeGrant, [StrictPKCE(required=True)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def _access_token(
        self, client: OAuthClient, grant_type: str, user: ResourceOwner | None, scope: str
    ) -> str:
        key = signing_keys.current_signing_key_sync(self.store.db, self.realm.city)
        subject = user.person_id if user else client.client_id
        scope = user.allowed(scope) if user else scope  # the last gate before signing
        return sign_access_token(
            key,
            self.realm,
            subject=subject,
            scope=scope,
            client_id=client.client_id,
            audience=self.audience,
            ttl_seconds=self.access_ttl_seconds,
            organisation=self._organisation(client, user),
        ).access_token

    def _organisation(self, client: OAuthClient, user: ResourceOwner | None) -> str | None:
        """What a token acts for: a client's own (client credentials) is its organisation's;
        a person's is their organisation's, unless the client acts for another one (then
        neither: the person does not act for the client's organisation, nor it for theirs)."""
        if user is None:
            return client.organisation
        own, _ = people.membership(self.store.db, self.realm.city, user.person_id)
        return own if client.organisation in (None, own) else None

    def resource_owner(self, person_id: str) -> ResourceOwner | None:
        role = people.role(self.store.db, self.realm.city, person_id)
        return ResourceOwner(person_id, self.realm.city, role) if role else None

    def query_client(self, client_id: str) -> OAuthClient | None:
        city = self.realm.city
        client = self.store.get_client(city, client_id)
        uris = self.web_app_redirect_uris
        if (
            uris
            and client_id == web_app_clients.client_id(city)
            and (client is None or not set(uris) <= set(client.redirect_uris))
        ):
            # A city added since the service started, or a start that could not reach the
            # database: the realm gets the web app (at this address) on first use. Adding,
            # not replacing: two processes on other addresses must not undo each other.
            web_app_clients.ensure(self.store, [city], uris, replace_uris=False)
            client = self.store.get_client(city, client_id)
        return client if client is not None and client.revoked_at is None else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        claims = json.loads(jws.extract_compact(token["access_token"].encode()).payload)
        if request.authorization_code is not None:
            family = request.authorization_code.family
        elif request.refresh_token is not None:
            family = request.refresh_token.family
        else:
            family = f"cc-{secrets.token_urlsafe(12)}"
        expires = now() + timedelta(seconds=int(token["expires_in"]))
        if not self.store.add_family_token(family, self.realm.city, claims["jti"], expires):
            # The code or refresh token was replayed meanwhile: nothing from it is handed out.
            raise InvalidGrantError("this grant was revoked")
        if "refresh_token" in token:
            owner = cast(ResourceOwner, request.user)
            self.store.save_refresh_token(
                RefreshToken(
                    token_hash=hash_secret(token["refresh_token"]),
                    city=self.realm.city,
                    client_id=cast(OAuthClient, request.client).client_id,
                    person_id=owner.person_id,
                    scope=token.get("scope", ""),
                    family=family,
                    expires_at=now() + timedelta(days=REFRESH_TTL_DAYS),
                )
            )

    # Typed doors into authlib, for the async edge.

    def token_response(self, request: FormRequest) -> OAuthResponse:
        return cast(OAuthResponse, self.create_token_response(request))

    def endpoint_response(self, name: str, request: FormRequest) -> OAuthResponse:
        return cast(OAuthResponse, self.create_endpoint_response(name, request))

    def consent(self, request: FormRequest) -> Consent:
        """Validate an authorization request before showing the sign-in page."""
        grant = self.get_consent_grant(request=request)
        return Consent(
            client=cast(OAuthClient, grant.client),
            scope=str(grant.request.scope or ""),
            grant=grant,
        )

    def authorization_response(
        self, request: FormRequest, consent: Consent, owner: ResourceOwner | None
    ) -> OAuthResponse:
        """Redirect with a code (or access_denied when `owner` is None) to the client."""
        response = self.create_authorization_response(
            request=request, grant_user=owner, grant=consent.grant
        )
        return self._with_issuer(cast(OAuthResponse, response))

    def error_response(self, request: FormRequest, error: OAuth2Error) -> OAuthResponse:
        """An authorization error: redirected to the client when it has a redirect URI."""
        return self._with_issuer(cast(OAuthResponse, self.handle_error_response(request, error)))

    def _with_issuer(self, response: OAuthResponse) -> OAuthResponse:
        """RFC 9207 §2: authorization responses, errors included, carry `iss`, so that a
        client of several realms on one host can tell which one answered (mix-up attacks)."""
        status, body, headers = response
        located = [(name, value) for name, value in headers if name.lower() == "location"]
        if not located:
            return response
        parts = urlsplit(located[0][1])
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
        location = urlunsplit(parts._replace(query=urlencode([*query, ("iss", self.realm.issuer)])))
        others = [(name, value) for name, value in headers if name.lower() != "location"]
        return status, body, [*others, ("Location", location)]

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def get_error_uri(self, request: OAuth2Request, error: Any) -> None:
        return None

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        base = self.realm.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "revocation_endpoint": f"{base}/revoke",
            "introspection_endpoint": f"{base}/introspect",
            "scopes_supported": sorted(KNOWN_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANTS),
            "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": SECRET_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        }

    def jwks(self) -> dict[str, Any]:
        """Every key that may still verify a live token: the current one and previous ones."""
        keys = signing_keys.signing_keys_sync(self.store.db, self.realm.city)
        return {"keys": [key.key.as_dict(private=False) for key in keys]}


__all__ = ["Consent", "InvalidGrantError", "RealmServer"]
