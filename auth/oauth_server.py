# authlib's server classes are untyped: strict checking would only restate that, so this
# module, the one that subclasses them, is checked in basic mode.
# pyright: basic
"""One authlib authorization server per city realm: grants, PKCE, tokens, revocation,
introspection. Synchronous by authlib's design: callers run it in a thread pool."""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jws, jwt
from joserfc.errors import JoseError

from auth.oauth_store import OAuthStore
from auth.passwords import hash_secret
from auth.realms import Realm
from auth.records import AuthorizationCode, ClientType, OAuthClient, RefreshToken
from auth.store import SIGNING_ALG
from auth.tokens import KNOWN_SCOPES, sign_access_token
from services.clock import now

CODE_TTL_SECONDS = 60  # RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes"
REFRESH_TTL_DAYS = 30
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


OAuthResponse = tuple[int, Any, list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class Consent:
    """A validated authorization request, waiting for the person's sign-in and consent."""

    client: OAuthClient
    scope: str
    grant: Any


# What a person may be given, by role: only a city's admins administer its realm.
ROLE_SCOPES = {
    "admin": frozenset({"read", "publish", "comment", "admin"}),
    "cro": frozenset({"read", "publish", "comment"}),
    "member": frozenset({"read", "publish", "comment"}),
}


@dataclass(frozen=True, slots=True)
class ResourceOwner:
    """A person of the realm's city, as authlib's grants see the end user."""

    person_id: str
    city: str
    role: str = "member"

    def get_user_id(self) -> str:
        return self.person_id

    def allowed(self, scope: str) -> str:
        """`scope` without what this person's role may not have."""
        permitted = ROLE_SCOPES.get(self.role, frozenset[str]())
        return " ".join(s for s in scope.split() if s in permitted)


class _Payload(OAuth2Payload):
    """Parameters with their repeats kept: authlib refuses repeated PKCE parameters."""

    def __init__(self, data: dict[str, str], datalist: dict[str, list[str]]) -> None:
        self._data = data
        self._datalist = defaultdict(list, datalist)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


def _data(request: OAuth2Request) -> dict[str, str]:
    return cast(_Payload, request.payload).data


class FormRequest(OAuth2Request):
    """An OAuth 2.0 request built from what the async edge already read."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Mapping[str, list[str]],
        form: Mapping[str, list[str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)  # case-insensitive, like HTTP
        self._args = {k: v[0] for k, v in query.items() if v}
        self._form = {k: v[0] for k, v in form.items() if v}
        datalist: dict[str, list[str]] = {k: list(v) for k, v in query.items()}
        for k, v in form.items():
            datalist.setdefault(k, []).extend(v)
        self.payload = _Payload({**self._args, **self._form}, datalist)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True, slots=True)
class IssuedToken:
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


class StrictPKCE(CodeChallenge):
    """PKCE per RFC 9700 §2.1.1: S256 only, and required of public clients at /authorize."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - authlib's class attribute

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request: OAuth2Request = grant.request
        data = _data(request)
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
        asked = set(str(_data(self.request).get("scope") or "").split())
        if client is not None and asked - set(client.scopes):
            extra = " ".join(sorted(asked - set(client.scopes)))
            raise InvalidScopeError(f"this client may not ask for: {extra}")


class CredentialsGrant(_ClientScopes, ClientCredentialsGrant):
    # RFC 6749 §2.3.1: both ways of sending the secret; the metadata advertises both.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012


class CodeGrant(_ClientScopes, AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: RealmServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = _data(request)
        owner = cast(ResourceOwner, request.user)
        scope = owner.allowed(request.scope or "")
        if not scope:
            raise AccessDeniedError("none of the requested scopes is open to this person")
        self.server.store.save_code(AuthorizationCode(
            code_hash=hash_secret(code), city=self.server.realm.city,
            client_id=cast(OAuthClient, request.client).client_id, person_id=owner.person_id,
            redirect_uri=data.get("redirect_uri") or "", scope=scope,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            family=secrets.token_urlsafe(16),
            expires_at=now() + timedelta(seconds=CODE_TTL_SECONDS),
        ))  # fmt: skip

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


class RotatingRefreshGrant(RefreshTokenGrant):
    """Refresh tokens rotate on every use; reusing a rotated one revokes its whole family
    (RFC 9700 §4.14.2)."""

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


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS
    server: RealmServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request: OAuth2Request) -> None:
        self.server.revoke(token)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012
    server: RealmServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def check_permission(
        self, token: IssuedToken, client: OAuthClient, request: OAuth2Request
    ) -> bool:
        return client.city == self.server.realm.city  # clients of this realm only

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "active": True, "scope": token.scope, "client_id": token.client_id,
            "sub": token.subject, "iss": token.issuer, "exp": token.expires_at,
        }  # fmt: skip
        if token.kind == "access_token":
            answer.update(
                token_type="Bearer",  # noqa: S106 - a token type, not a password
                aud=token.audience,
                iat=token.issued_at,
                jti=token.jti,
            )
        return answer


class RealmServer(AuthorizationServer):
    """The authorization server of one city's realm."""

    def __init__(
        self, *, realm: Realm, store: OAuthStore, audience: str, access_ttl_seconds: int
    ) -> None:
        super().__init__(scopes_supported=sorted(KNOWN_SCOPES))
        self.realm = realm
        self.store = store
        self.audience = audience
        self.access_ttl_seconds = access_ttl_seconds
        generator: Any = BearerTokenGenerator
        self.register_token_generator("default", generator(
            access_token_generator=self._access_token,
            refresh_token_generator=lambda **_: secrets.token_urlsafe(48),  # pyright: ignore[reportUnknownLambdaType]
            expires_generator=lambda *_: self.access_ttl_seconds,  # pyright: ignore[reportUnknownLambdaType]
        ))  # fmt: skip
        self.register_grant(CredentialsGrant)
        self.register_grant(CodeGrant, [StrictPKCE(required=True)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def _access_token(
        self, client: OAuthClient, grant_type: str, user: ResourceOwner | None, scope: str
    ) -> str:
        key = self.store.current_signing_key(self.realm.city)
        subject = user.person_id if user else client.client_id
        scope = user.allowed(scope) if user else scope  # the last gate before signing
        return sign_access_token(
            key, self.realm, subject=subject, scope=scope, client_id=client.client_id,
            audience=self.audience, ttl_seconds=self.access_ttl_seconds,
        ).access_token  # fmt: skip

    def resource_owner(self, person_id: str) -> ResourceOwner | None:
        role = self.store.person_role(self.realm.city, person_id)
        return ResourceOwner(person_id, self.realm.city, role) if role else None

    def query_client(self, client_id: str) -> OAuthClient | None:
        client = self.store.get_client(self.realm.city, client_id)
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
            self.store.save_refresh_token(RefreshToken(
                token_hash=hash_secret(token["refresh_token"]), city=self.realm.city,
                client_id=cast(OAuthClient, request.client).client_id, person_id=owner.person_id,
                scope=token.get("scope", ""), family=family,
                expires_at=now() + timedelta(days=REFRESH_TTL_DAYS),
            ))  # fmt: skip

    def find_token(self, token_string: str, hint: str | None) -> IssuedToken | None:
        """A token of this realm: a JWT access token we signed, or a stored refresh token."""
        if hint != "refresh_token" and token_string.count(".") == 2:
            found = self._access_token_record(token_string)
            if found is not None or hint == "access_token":
                return found
        refresh = self.store.find_refresh_token(self.realm.city, hash_secret(token_string))
        if refresh is None:
            return None
        return IssuedToken(
            kind="refresh_token", city=refresh.city, client_id=refresh.client_id,
            subject=refresh.person_id, scope=refresh.scope, issued_at=0,
            expires_at=int(refresh.expires_at.timestamp()), jti=None, family=refresh.family,
            revoked=refresh.is_revoked(), issuer=self.realm.issuer, audience=None,
        )  # fmt: skip

    def _access_token_record(self, token_string: str) -> IssuedToken | None:
        try:
            header = jws.extract_compact(token_string.encode()).protected
            keys = {k.kid: k for k in self.store.signing_keys(self.realm.city)}
            key = keys.get(str(header.get("kid")))
            if key is None or header.get("typ") != "at+jwt":
                return None
            claims = jwt.decode(token_string, key.key, algorithms=[SIGNING_ALG]).claims
        except (JoseError, ValueError):
            return None
        if claims.get("iss") != self.realm.issuer:
            return None  # a token of another realm is never this realm's
        denied = self.store.is_denied(
            self.realm.city,
            str(claims["jti"]),
            str(claims["client_id"]),
            str(claims["sub"]),
            int(claims["iat"]),
        )
        return IssuedToken(
            kind="access_token", city=self.realm.city, client_id=str(claims["client_id"]),
            subject=str(claims["sub"]), scope=str(claims.get("scope", "")),
            issued_at=int(claims["iat"]), expires_at=int(claims["exp"]),
            jti=str(claims["jti"]), family=None, revoked=denied, issuer=self.realm.issuer,
            audience=str(claims.get("aud")),
        )  # fmt: skip

    def revoke(self, token: IssuedToken) -> None:
        """RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens of the
        same grant; revoking an access token puts its jti on the denylist."""
        if token.kind == "refresh_token" and token.family:
            self.store.revoke_family(self.realm.city, token.family)
        elif token.jti:
            ttl = max(token.expires_at - int(now().timestamp()), 0)
            self.store.deny("jti", self.realm.city, token.jti, at=now(), ttl=ttl)

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
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        }

    def jwks(self) -> dict[str, Any]:
        """Every key that may still verify a live token: the current one and previous ones."""
        return {
            "keys": [
                key.key.as_dict(private=False) for key in self.store.signing_keys(self.realm.city)
            ]
        }


__all__ = [
    "Consent",
    "FormRequest",
    "InvalidGrantError",
    "OAuthResponse",
    "RealmServer",
    "ResourceOwner",
]
