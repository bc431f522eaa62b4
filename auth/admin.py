"""Administration of a city's realm: clients, people's passwords, keys and trusted identity
providers. Synchronous (the authorization server's store); shared by the CLI and GraphQL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from cityexchange.auth import federated_links, revocations, signing_keys, trusted_issuers
from cityexchange.auth.federated_links import federated_key
from cityexchange.auth.federation import MAX_LIFETIME_SECONDS as FEDERATED_MAX_LIFETIME_SECONDS
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    hash_secret,
    new_secret,
)
from cityexchange.auth.records import GRANTS, ClientType, OAuthClient
from cityexchange.auth.tokens import KNOWN_SCOPES, MAX_ACCESS_TOKEN_TTL_SECONDS
from cityexchange.services import organisations
from cityexchange.services.clock import now
from cityexchange.services.errors import Forbidden, InvalidInput, NotFound
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import organisations as organisation_store
from cityexchange.services.store import people


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    client: OAuthClient
    secret: str | None  # shown once, stored only as a hash


def _city(store: OAuthStore, city: str) -> None:
    if city_store.city_name(store.db, city) is None:
        raise NotFound("City", city)


def _redirect_uri(uri: str) -> str:
    """RFC 8252/9700: https, loopback http for native apps, or a private-use scheme; no
    fragment; compared later by exact string match."""
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname  # parsed lazily: a malformed IPv6 host raises here
    except ValueError:
        raise InvalidInput("redirectUris", f"{uri!r} is not a valid redirect URI") from None
    loopback = hostname in ("127.0.0.1", "::1", "localhost")
    if parts.fragment or not parts.scheme or len(uri) > 2000:
        raise InvalidInput("redirectUris", f"{uri!r} is not a valid redirect URI")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and loopback:
        return uri
    if parts.scheme not in ("http", "https") and "." in parts.scheme:
        return uri  # private-use scheme such as org.example.app:/callback (RFC 8252 §7.1)
    raise InvalidInput(
        "redirectUris", f"{uri!r}: use https, loopback http, or a reverse-DNS private-use scheme"
    )


def _binding(
    store: OAuthStore, *, city: str, organisation: str, scopes: Sequence[str], by: Principal | None
) -> None:
    """Whether a client of `city` may act for `organisation`: one of the city's, or an
    international one; never with `admin` (an organisation does not administer its city's
    realm); and, unless an operator asks (`by` None), asked by someone who manages it."""
    exists, organisation_city = organisation_store.city_of(store.db, organisation)
    if not exists:
        raise NotFound("Organisation", organisation)
    if organisation_city not in (None, city):
        raise InvalidInput("organisationId", f"is an organisation of {organisation_city}")
    if Scope.ADMIN.value in scopes:
        raise InvalidInput("scope", "a client bound to an organisation cannot have admin")
    if by is None:
        return
    membership = people.membership(store.db, by.city, by.subject)
    if not organisations.manages(
        by, organisation_id=organisation, city=organisation_city, membership=membership
    ):
        raise Forbidden("only the organisation's admins may register its clients")


def register_client(
    store: OAuthStore,
    *,
    city: str,
    name: str,
    client_type: ClientType,
    grants: Sequence[str],
    redirect_uris: Sequence[str],
    scopes: Sequence[str],
    organisation: str | None = None,
    by: Principal | None = None,
) -> RegisteredClient:
    """Register a client of `city`'s realm, acting for `organisation` if given (checked as
    asked `by` a caller of the API); a confidential client gets its secret once."""
    _city(store, city)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name", "must be 1-200 characters")
    grants = tuple(dict.fromkeys(grants))
    if not grants or set(grants) - set(GRANTS):
        raise InvalidInput("grants", f"choose from {', '.join(GRANTS)}")
    if client_type is ClientType.PUBLIC and "client_credentials" in grants:
        raise InvalidInput("grants", "a public client cannot use client_credentials")
    uris = tuple(_redirect_uri(u) for u in dict.fromkeys(redirect_uris))
    if "authorization_code" in grants and not uris:
        raise InvalidInput("redirectUris", "authorization_code needs at least one")
    wanted = tuple(dict.fromkeys(scopes))
    if not wanted or set(wanted) - KNOWN_SCOPES:
        raise InvalidInput("scope", f"choose from {' '.join(sorted(KNOWN_SCOPES))}")
    if organisation is not None:
        _binding(store, city=city, organisation=organisation, scopes=wanted, by=by)
    secret = new_secret() if client_type is ClientType.CONFIDENTIAL else None
    client = OAuthClient(
        client_id=f"{city}-{secrets.token_urlsafe(12)}",
        city=city,
        name=name,
        type=client_type,
        grants=grants,
        redirect_uris=uris,
        scopes=wanted,
        secret_hash=hash_secret(secret) if secret else None,
        created_at=now(),
        organisation=organisation,
    )
    return RegisteredClient(store.add_client(client), secret)


def clients(store: OAuthStore, *, city: str) -> list[OAuthClient]:
    _city(store, city)
    return store.list_clients(city)


def rotate_secret(store: OAuthStore, *, city: str, client_id: str) -> str:
    """A new secret for a confidential client; the old one stops working at once."""
    client = store.get_client(city, client_id)
    if client is None or client.revoked_at is not None:
        raise NotFound("Client", client_id)
    if client.type is not ClientType.CONFIDENTIAL:
        raise InvalidInput("clientId", "public clients have no secret")
    secret = new_secret()
    store.set_client_secret(city, client_id, hash_secret(secret))
    return secret


def revoke_client(store: OAuthStore, *, city: str, client_id: str, access_ttl: int) -> None:
    """Revoke a client: no new tokens, and its live access tokens are refused within seconds."""
    moment = now()
    if not store.revoke_client(city, client_id, at=moment):
        raise NotFound("Client", client_id)
    ttl = max(access_ttl, MAX_ACCESS_TOKEN_TTL_SECONDS)
    revocations.deny(store.db, "client", city, client_id, at=moment, ttl=ttl)


def check_password(password: str) -> None:
    """Passwords of 10 to 1024 characters (NIST SP 800-63B: length, not composition rules)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            "password", f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )


def set_password(store: OAuthStore, *, city: str, username: str, password: str) -> None:
    check_password(password)
    if not people.set_password(store.db, city, username, hash_password(password)):
        raise NotFound("Person", f"{city}/{username}")


def revoke_person(store: OAuthStore, *, city: str, username: str, access_ttl: int) -> None:
    """Stop a person: no sign-in, no refresh, and live access tokens refused within seconds."""
    credentials = people.credentials(store.db, city, username)
    if credentials is None:
        raise NotFound("Person", f"{city}/{username}")
    person_id, moment = credentials.person_id, now()
    people.mark_revoked(store.db, city, person_id, at=moment)
    # Identities at a provider no longer speak for a revoked person, whatever they sign.
    federated_links.unlink_person(store.db, city, person_id)
    store.revoke_person_refresh_tokens(city, person_id, at=moment)
    ttl = max(access_ttl, MAX_ACCESS_TOKEN_TTL_SECONDS)
    revocations.deny(store.db, "person", city, person_id, at=moment, ttl=ttl)


def rotate_key(store: OAuthStore, *, city: str) -> str:
    """Sign new tokens with a new key at once; older keys stay published and verifying."""
    _city(store, city)
    return signing_keys.add_signing_key_sync(store.db, city).kid


def trust_issuer(
    store: OAuthStore,
    *,
    city: str,
    issuer: str,
    jwks_uri: str,
    audience: str,
    scope_claim: str = "scope",
    subject_claim: str = "sub",
    force: bool = False,
) -> None:
    """Accept tokens of `issuer` (an identity provider) as `city`'s, and only `city`'s."""
    _city(store, city)
    current = trusted_issuers.trusting_city(store.db, issuer)
    if current is not None and current != city and not force:
        raise InvalidInput(
            "issuer",
            f"is trusted by {current}; moving it to {city} would make {current}'s people act "
            f"as {city} (pass --force to move it)",
        )
    for field, value in (("issuer", issuer), ("jwksUri", jwks_uri)):
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if not parts.hostname or not (
            parts.scheme == "https" or (parts.scheme == "http" and loopback)
        ):
            raise InvalidInput(field, "must be an https URL")
    if not audience.strip():
        raise InvalidInput("audience", "must not be blank")
    trusted_issuers.trust(
        store.db,
        {
            "_id": issuer,  # compared with the token's `iss` exactly
            "city": city,
            "jwksUri": jwks_uri,
            "audience": audience,
            "scopeClaim": scope_claim,
            "subjectClaim": subject_claim,
            "createdAt": now(),
        },
    )


def link_federated_subject(
    store: OAuthStore, *, city: str, username: str, issuer: str, subject: str
) -> None:
    """Let tokens of `issuer` (trusted by `city`) for `subject` speak for one of the city's
    people. Without such a link a federated token is nobody's, whatever its `sub` says."""
    if trusted_issuers.trusting_city(store.db, issuer) != city:
        raise InvalidInput("issuer", f"is not an identity provider {city} trusts")
    if not subject.strip():
        raise InvalidInput("subject", "must not be blank")
    credentials = people.credentials(store.db, city, username)
    if credentials is None or credentials.revoked_at is not None:
        raise NotFound("Person", f"{city}/{username}")
    linked = federated_links.link(store.db, city, issuer, subject, credentials.person_id)
    if linked != credentials.person_id:
        raise InvalidInput("subject", "is linked to another person; unlink it first")


def unlink_federated_subject(store: OAuthStore, *, city: str, issuer: str, subject: str) -> None:
    """Tokens of (issuer, subject) stop speaking for the linked person within seconds."""
    if not federated_links.unlink(store.db, city, issuer, subject):
        raise NotFound("FederatedSubject", federated_key(issuer, subject))


def revoke_federated_subject(
    store: OAuthStore, *, city: str, issuer: str, subject: str, access_ttl: int
) -> None:
    """Refuse every live token of (issuer, subject) within seconds, and drop its link. Tokens
    its provider issues later are accepted, as nobody's: stop the identity there too."""
    federated_links.unlink(store.db, city, issuer, subject)
    revocations.deny(
        store.db,
        "person",
        city,
        federated_key(issuer, subject),
        at=now(),
        ttl=max(access_ttl, FEDERATED_MAX_LIFETIME_SECONDS),
    )


INVITATION_DAYS = 7


def invite(store: OAuthStore, *, city: str, username: str) -> str:
    """A single-use code with which a person sets their password (7 days); shown once."""
    code = new_secret()
    if not people.set_invitation(
        store.db,
        city,
        username,
        hash_secret(code),
        expires_at=now() + timedelta(days=INVITATION_DAYS),
    ):
        raise NotFound("Person", f"{city}/{username}")
    return code


def accept_invitation(
    store: OAuthStore, *, city: str, username: str, code: str, password: str
) -> bool:
    """Set a password with an invitation code; False when the code is wrong or used."""
    check_password(password)
    password_hash = hash_password(password)
    return people.accept_invitation(store.db, city, username, hash_secret(code), password_hash)


@dataclass(frozen=True, slots=True)
class RealmAdmin:
    """A city admin's realm administration for the async API: the caller must hold `admin`,
    acts on its own city only, and the synchronous store runs in a worker thread."""

    store: OAuthStore
    access_ttl: int

    async def register_client(
        self,
        actor: Principal,
        *,
        name: str,
        client_type: ClientType,
        grants: Sequence[str],
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        organisation: str | None = None,
    ) -> RegisteredClient:
        """A client of the caller's city; one acting for an organisation may also be
        registered by that organisation's own admins."""
        if organisation is None:
            actor.require(Scope.ADMIN)
        return await asyncio.to_thread(
            register_client,
            self.store,
            city=actor.city,
            name=name,
            client_type=client_type,
            grants=grants,
            redirect_uris=redirect_uris,
            scopes=scopes,
            organisation=organisation,
            by=actor,
        )

    async def clients(self, actor: Principal) -> list[OAuthClient]:
        actor.require(Scope.ADMIN)
        return await asyncio.to_thread(clients, self.store, city=actor.city)

    async def rotate_secret(self, actor: Principal, client_id: str) -> str:
        actor.require(Scope.ADMIN)
        return await asyncio.to_thread(
            rotate_secret, self.store, city=actor.city, client_id=client_id
        )

    async def revoke_client(self, actor: Principal, client_id: str) -> None:
        actor.require(Scope.ADMIN)
        await asyncio.to_thread(
            revoke_client,
            self.store,
            city=actor.city,
            client_id=client_id,
            access_ttl=self.access_ttl,
        )

    async def invite(self, actor: Principal, username: str) -> str:
        actor.require(Scope.ADMIN)
        return await asyncio.to_thread(invite, self.store, city=actor.city, username=username)
