"""The authorization server's storage, synchronous: authlib's core is synchronous, so it runs
in a thread pool with its own MongoClient and never blocks the event loop.

OAuthStore owns the collections only the authorization server uses (clients, codes, refresh
tokens and their families, consents); the other collections the server and the realm admin
touch are reached through their owners, with `OAuthStore.db` (see auth/__init__.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pymongo import ASCENDING, IndexModel, MongoClient, ReturnDocument, UpdateOne
from pymongo.database import Database as SyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from cityexchange.auth import federated_links, revocations, sign_in_store, trusted_issuers
from cityexchange.auth.records import AuthorizationCode, ClientType, OAuthClient, RefreshToken
from cityexchange.services.clock import now
from cityexchange.services.store.unavailable import guarded_sync

Document = dict[str, Any]
# A family's access tokens still to deny on revocation: the unexpired ones, and never more than
# this many (a refresh a second for a whole access-token lifetime is under a thousand).
MAX_JTIS = 5000
DUPLICATE_KEY = 11000  # the server's error code for a unique index violated
T = TypeVar("T")

_TTL = {"expireAfterSeconds": 0}
# Every index of the collections auth/ owns (realm_keys' is in services/store/indexes.py).
INDEXES: dict[str, list[IndexModel]] = {
    "oauth_clients": [IndexModel([("city", ASCENDING), ("createdAt", ASCENDING)], name="city")],
    "oauth_codes": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "refresh_tokens": [
        IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL),
        IndexModel([("family", ASCENDING)], name="family"),
    ],
    "token_families": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "consents": [IndexModel([("city", ASCENDING), ("personId", ASCENDING)], name="person")],
    revocations.COLLECTION: revocations.INDEXES,
    trusted_issuers.COLLECTION: trusted_issuers.INDEXES,
    federated_links.COLLECTION: federated_links.INDEXES,
    **sign_in_store.INDEXES,
}


def _guard_methods(cls: type[T]) -> type[T]:
    """Every public method turns 'database unavailable' into the domain's Unavailable."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not callable(method) or isinstance(method, classmethod):
            continue
        setattr(cls, name, guarded_sync(method))  # pyright: ignore[reportUnknownArgumentType]
    return cls


def _client(doc: Document) -> OAuthClient:
    return OAuthClient(
        client_id=doc["_id"],
        city=doc["city"],
        name=doc["name"],
        type=ClientType(doc["type"]),
        grants=tuple(doc["grants"]),
        redirect_uris=tuple(doc.get("redirectUris", ())),
        scopes=tuple(doc["scopes"]),
        secret_hash=doc.get("secretHash"),
        created_at=doc["createdAt"],
        revoked_at=doc.get("revokedAt"),
        organisation=doc.get("organisationId"),
    )


@_guard_methods
@dataclass(frozen=True, slots=True)
class OAuthStore:
    client: MongoClient[Document]
    db: SyncDatabase[Document]

    @classmethod
    def connect(
        cls, uri: str, name: str, *, server_selection_timeout_ms: int, timeout_ms: int
    ) -> OAuthStore:
        client: MongoClient[Document] = MongoClient(
            uri,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            timeoutMS=timeout_ms,
            connectTimeoutMS=min(server_selection_timeout_ms, 3000),
            tz_aware=True,
            appname="cityexchange-oauth",
        )
        return cls(client=client, db=client[name])

    def close(self) -> None:
        self.client.close()

    # Clients

    def add_client(self, client: OAuthClient) -> OAuthClient:
        self.db.oauth_clients.insert_one(
            {
                "_id": client.client_id,
                "city": client.city,
                "name": client.name,
                "type": client.type.value,
                "grants": list(client.grants),
                "redirectUris": list(client.redirect_uris),
                "scopes": list(client.scopes),
                "secretHash": client.secret_hash,
                "createdAt": client.created_at,
                "revokedAt": None,
                "organisationId": client.organisation,
            }
        )
        return client

    def ensure_clients(self, clients: Sequence[OAuthClient], *, replace_uris: bool) -> None:
        """Register each of `clients` unless it exists; then set its redirect URIs to the
        given ones (`replace_uris`: the service's address may have changed) or add those
        missing. One an admin revoked stays revoked. Concurrent calls (replicas starting
        together) are safe: an insert that loses the race is an existing client."""
        if not clients:
            return

        def uris(client: OAuthClient) -> Document:
            given = list(client.redirect_uris)
            if replace_uris:
                return {"$set": {"redirectUris": given}}
            return {"$addToSet": {"redirectUris": {"$each": given}}}

        try:
            self.db.oauth_clients.bulk_write(
                [
                    UpdateOne(
                        {"_id": client.client_id},
                        {
                            **uris(client),
                            "$setOnInsert": {
                                "city": client.city,
                                "name": client.name,
                                "type": client.type.value,
                                "grants": list(client.grants),
                                "scopes": list(client.scopes),
                                "secretHash": None,
                                "createdAt": client.created_at,
                                "revokedAt": None,
                                "organisationId": None,
                            },
                        },
                        upsert=True,
                    )
                    for client in clients
                ],
                ordered=False,
            )
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
            # Another process inserted it first; what it wrote is the same client.

    def get_client(self, city: str, client_id: str) -> OAuthClient | None:
        doc = self.db.oauth_clients.find_one({"_id": client_id, "city": city})
        return _client(doc) if doc else None

    def list_clients(self, city: str) -> list[OAuthClient]:
        return [_client(d) for d in self.db.oauth_clients.find({"city": city}).sort("createdAt")]

    def set_client_secret(self, city: str, client_id: str, secret_hash: str) -> bool:
        result = self.db.oauth_clients.update_one(
            {"_id": client_id, "city": city, "revokedAt": None},
            {"$set": {"secretHash": secret_hash}},
        )
        return result.matched_count == 1

    def revoke_client(self, city: str, client_id: str, *, at: datetime) -> bool:
        """Revoke a client and its refresh tokens; False when there is no such live client."""
        result = self.db.oauth_clients.update_one(
            {"_id": client_id, "city": city, "revokedAt": None}, {"$set": {"revokedAt": at}}
        )
        if result.matched_count != 1:
            return False
        self.db.refresh_tokens.update_many(
            {"city": city, "clientId": client_id, "revokedAt": None}, {"$set": {"revokedAt": at}}
        )
        return True

    def revoke_person_refresh_tokens(self, city: str, person_id: str, *, at: datetime) -> None:
        self.db.refresh_tokens.update_many(
            {"city": city, "personId": person_id, "revokedAt": None}, {"$set": {"revokedAt": at}}
        )

    # Consent

    def has_consent(self, city: str, person_id: str, client_id: str, scope: str) -> bool:
        doc = self.db.consents.find_one({"_id": f"{city}:{person_id}:{client_id}"})
        return doc is not None and set(scope.split()) <= set(doc["scopes"])

    def add_consent(self, city: str, person_id: str, client_id: str, scope: str) -> None:
        self.db.consents.update_one(
            {"_id": f"{city}:{person_id}:{client_id}"},
            {
                "$set": {"city": city, "personId": person_id, "clientId": client_id, "at": now()},
                "$addToSet": {"scopes": {"$each": scope.split()}},
            },
            upsert=True,
        )

    # Authorization codes: single use; a second use is a replay

    def save_code(self, code: AuthorizationCode) -> None:
        self.db.oauth_codes.insert_one(
            {
                "_id": code.code_hash,
                "city": code.city,
                "clientId": code.client_id,
                "personId": code.person_id,
                "redirectUri": code.redirect_uri,
                "scope": code.scope,
                "codeChallenge": code.code_challenge,
                "codeChallengeMethod": code.code_challenge_method,
                "family": code.family,
                "expiresAt": code.expires_at,
                "usedAt": None,
            }
        )

    def claim_code(
        self, city: str, code_hash: str, client_id: str
    ) -> tuple[AuthorizationCode | None, AuthorizationCode | None]:
        """(the code, if this call is its first and only use; the code, if it was replayed)."""
        doc = self.db.oauth_codes.find_one_and_update(
            {"_id": code_hash, "city": city, "clientId": client_id, "usedAt": None},
            {"$set": {"usedAt": now()}},
            return_document=ReturnDocument.BEFORE,
        )
        if doc is not None:
            return _code(doc), None
        used = self.db.oauth_codes.find_one({"_id": code_hash, "city": city})
        return None, _code(used) if used is not None else None

    # Refresh tokens and their families

    def save_refresh_token(self, token: RefreshToken) -> None:
        self.db.refresh_tokens.insert_one(
            {
                "_id": token.token_hash,
                "city": token.city,
                "clientId": token.client_id,
                "personId": token.person_id,
                "scope": token.scope,
                "family": token.family,
                "expiresAt": token.expires_at,
                "rotatedAt": None,
                "revokedAt": None,
            }
        )

    def find_refresh_token(self, city: str, token_hash: str) -> RefreshToken | None:
        doc = self.db.refresh_tokens.find_one({"_id": token_hash, "city": city})
        return _refresh(doc) if doc else None

    def rotate_refresh_token(self, token_hash: str) -> bool:
        """Mark a refresh token used; False when another request used it first."""
        result = self.db.refresh_tokens.update_one(
            {"_id": token_hash, "rotatedAt": None, "revokedAt": None},
            {"$set": {"rotatedAt": now()}},
        )
        return result.modified_count == 1

    def add_family_token(self, family: str, city: str, jti: str, expires_at: datetime) -> bool:
        """Record a token of the family; False (nothing recorded) once the family is revoked.
        A revocation marks the family first and reads its tokens after, so a token is either
        recorded in time to be denied, or refused here."""
        try:
            self.db.token_families.update_one(
                {"_id": family, "revokedAt": None},
                {
                    "$set": {"city": city},
                    "$max": {"expiresAt": expires_at},
                    "$push": {
                        "jtis": {"$each": [{"jti": jti, "exp": expires_at}], "$slice": -MAX_JTIS}
                    },
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the family exists and is revoked: the upsert could not insert
        # Only unexpired tokens need denying: a family refreshed all day stays small.
        self.db.token_families.update_one(
            {"_id": family}, {"$pull": {"jtis": {"exp": {"$lte": now()}}}}
        )
        return True

    def family_live_tokens(self, family: str) -> int:
        """How many of the family's access tokens have not expired: its refreshes within one
        access-token lifetime."""
        doc = self.db.token_families.find_one({"_id": family}, {"jtis": 1})
        moment = now()
        return sum(1 for issued in (doc or {}).get("jtis", []) if issued["exp"] > moment)

    def family_revoked(self, family: str) -> bool:
        doc = self.db.token_families.find_one({"_id": family}, {"revokedAt": 1})
        return doc is not None and doc.get("revokedAt") is not None

    def revoke_family(self, city: str, family: str) -> None:
        """Revoke every refresh token of a family and deny its unexpired access tokens."""
        moment = now()
        doc = self.db.token_families.find_one_and_update(
            {"_id": family},
            {
                "$set": {"revokedAt": moment, "city": city},
                "$setOnInsert": {"expiresAt": moment + timedelta(days=31), "jtis": []},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        self.db.refresh_tokens.update_many(
            {"family": family, "city": city, "revokedAt": None}, {"$set": {"revokedAt": moment}}
        )
        for issued in (doc or {}).get("jtis", []):
            if issued["exp"] > moment:
                ttl = int((issued["exp"] - moment).total_seconds()) + 60
                revocations.deny(self.db, "jti", city, issued["jti"], at=moment, ttl=ttl)


def _code(doc: Document) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=doc["_id"],
        city=doc["city"],
        client_id=doc["clientId"],
        person_id=doc["personId"],
        redirect_uri=doc["redirectUri"],
        scope=doc["scope"],
        code_challenge=doc.get("codeChallenge"),
        code_challenge_method=doc.get("codeChallengeMethod"),
        family=doc["family"],
        expires_at=doc["expiresAt"],
    )


def _refresh(doc: Document) -> RefreshToken:
    return RefreshToken(
        token_hash=doc["_id"],
        city=doc["city"],
        client_id=doc["clientId"],
        person_id=doc["personId"],
        scope=doc["scope"],
        family=doc["family"],
        expires_at=doc["expiresAt"],
        rotated_at=doc.get("rotatedAt"),
        revoked_at=doc.get("revokedAt"),
    )


__all__ = ["INDEXES", "OAuthStore"]
