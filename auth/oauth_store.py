"""The authorization server's storage, synchronous: authlib's core is synchronous, so it runs
in a thread pool with its own MongoClient and never blocks the event loop."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, ReturnDocument
from pymongo.database import Database as SyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from auth.records import AuthorizationCode, ClientType, OAuthClient, RefreshToken
from auth.store import (
    SigningKey,
    federated_key,
    new_signing_key,
    signing_key_doc,
    signing_key_from_doc,
)
from auth.tokens import MAX_ACCESS_TOKEN_TTL_SECONDS
from services.clock import now
from services.errors import Unavailable

Document = dict[str, Any]
T = TypeVar("T")

_TTL = {"expireAfterSeconds": 0}
INDEXES: dict[str, list[IndexModel]] = {
    "oauth_clients": [IndexModel([("city", ASCENDING), ("createdAt", ASCENDING)], name="city")],
    "oauth_codes": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "refresh_tokens": [
        IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL),
        IndexModel([("family", ASCENDING)], name="family"),
    ],
    "token_families": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "revocations": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "login_failures": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "login_tickets": [IndexModel([("expiresAt", ASCENDING)], name="ttl", **_TTL)],
    "consents": [IndexModel([("city", ASCENDING), ("personId", ASCENDING)], name="person")],
    "trusted_issuers": [IndexModel([("city", ASCENDING)], name="city")],
    "federated_links": [IndexModel([("city", ASCENDING), ("personId", ASCENDING)], name="person")],
}


_UNREACHABLE = (ConnectionFailure, ExecutionTimeout, NetworkTimeout, ServerSelectionTimeoutError)


def _guard_methods(cls: type[T]) -> type[T]:
    """Every public method turns 'database unreachable' into the domain's Unavailable."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not callable(method) or isinstance(method, classmethod):
            continue

        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                try:
                    return fn(*args, **kwargs)
                except _UNREACHABLE as exc:
                    raise Unavailable() from exc

            return guarded

        setattr(cls, name, wrap(method))
    return cls


def _client(doc: Document) -> OAuthClient:
    return OAuthClient(
        client_id=doc["_id"], city=doc["city"], name=doc["name"], type=ClientType(doc["type"]),
        grants=tuple(doc["grants"]), redirect_uris=tuple(doc.get("redirectUris", ())),
        scopes=tuple(doc["scopes"]), secret_hash=doc.get("secretHash"),
        created_at=doc["createdAt"], revoked_at=doc.get("revokedAt"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Credentials:
    person_id: str
    city: str
    username: str
    password_hash: str | None
    revoked_at: datetime | None
    role: str = "member"


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
            uri, serverSelectionTimeoutMS=server_selection_timeout_ms, timeoutMS=timeout_ms,
            connectTimeoutMS=min(server_selection_timeout_ms, 3000), tz_aware=True,
            appname="cityexchange-oauth",
        )  # fmt: skip
        return cls(client=client, db=client[name])

    def close(self) -> None:
        self.client.close()

    # Realms and their keys

    def city_name(self, city: str) -> str | None:
        doc = self.db.cities.find_one({"_id": city}, {"name": 1})
        return doc["name"] if doc else None

    def signing_keys(self, city: str) -> list[SigningKey]:
        cursor = self.db.realm_keys.find({"city": city}).sort("createdAt", DESCENDING).limit(10)
        return [signing_key_from_doc(doc) for doc in cursor]

    def current_signing_key(self, city: str) -> SigningKey:
        keys = self.signing_keys(city)
        if keys:
            return keys[0]
        key = new_signing_key(city)
        self.db.realm_keys.insert_one(signing_key_doc(key))
        return key

    # Clients

    def add_client(self, client: OAuthClient) -> OAuthClient:
        self.db.oauth_clients.insert_one({
            "_id": client.client_id, "city": client.city, "name": client.name,
            "type": client.type.value, "grants": list(client.grants),
            "redirectUris": list(client.redirect_uris), "scopes": list(client.scopes),
            "secretHash": client.secret_hash, "createdAt": client.created_at,
            "revokedAt": None,
        })  # fmt: skip
        return client

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

    def revoke_client(self, city: str, client_id: str, *, access_ttl: int) -> bool:
        moment = now()
        result = self.db.oauth_clients.update_one(
            {"_id": client_id, "city": city, "revokedAt": None}, {"$set": {"revokedAt": moment}}
        )
        if result.matched_count != 1:
            return False
        self.db.refresh_tokens.update_many(
            {"city": city, "clientId": client_id, "revokedAt": None},
            {"$set": {"revokedAt": moment}},
        )
        self.deny(
            "client", city, client_id, at=moment, ttl=max(access_ttl, MAX_ACCESS_TOKEN_TTL_SECONDS)
        )
        return True

    # People

    def credentials(self, city: str, username: str) -> Credentials | None:
        doc = self.db.people.find_one({"city": city, "username": username})
        if doc is None:
            return None
        return Credentials(
            str(doc["_id"]),
            city,
            username,
            doc.get("passwordHash"),
            doc.get("revokedAt"),
            str(doc.get("role", "member")),
        )

    def set_password(self, city: str, username: str, password_hash: str) -> bool:
        result = self.db.people.update_one(
            {"city": city, "username": username}, {"$set": {"passwordHash": password_hash}}
        )
        return result.matched_count == 1

    def replace_password_hash(self, city: str, person_id: str, old: str, new: str) -> bool:
        """Rehash (e.g. scrypt to argon2id) unless the password changed meanwhile."""
        result = self.db.people.update_one(
            {"_id": ObjectId(person_id), "city": city, "passwordHash": old},
            {"$set": {"passwordHash": new}},
        )
        return result.modified_count == 1

    def revoke_person(self, city: str, person_id: str, *, access_ttl: int) -> None:
        moment = now()
        self.db.people.update_one(
            {"_id": ObjectId(person_id), "city": city}, {"$set": {"revokedAt": moment}}
        )
        # Identities at a provider no longer speak for a revoked person, whatever they sign.
        self.db.federated_links.delete_many({"city": city, "personId": person_id})
        self.db.refresh_tokens.update_many(
            {"city": city, "personId": person_id, "revokedAt": None},
            {"$set": {"revokedAt": moment}},
        )
        self.deny(
            "person", city, person_id, at=moment, ttl=max(access_ttl, MAX_ACCESS_TOKEN_TTL_SECONDS)
        )

    def set_invitation(
        self, city: str, username: str, code_hash: str, *, expires_at: datetime
    ) -> bool:
        result = self.db.people.update_one(
            {"city": city, "username": username},
            {"$set": {"invitation": {"hash": code_hash, "expiresAt": expires_at}}},
        )
        return result.matched_count == 1

    def accept_invitation(
        self, city: str, username: str, code_hash: str, password_hash: str
    ) -> bool:
        """Set the password and use the invitation up, in one atomic update."""
        result = self.db.people.update_one(
            {
                "city": city,
                "username": username,
                "invitation.hash": code_hash,
                "invitation.expiresAt": {"$gt": now()},
                "revokedAt": None,
            },
            {"$set": {"passwordHash": password_hash}, "$unset": {"invitation": ""}},
        )
        return result.modified_count == 1

    def person_role(self, city: str, person_id: str) -> str | None:
        """The person's current role; None when revoked, gone or of another city."""
        try:
            doc = self.db.people.find_one(
                {"_id": ObjectId(person_id), "city": city}, {"revokedAt": 1, "role": 1}
            )
        except InvalidId:
            return None
        if doc is None or doc.get("revokedAt") is not None:
            return None
        return str(doc.get("role", "member"))

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
        self.db.oauth_codes.insert_one({
            "_id": code.code_hash, "city": code.city, "clientId": code.client_id,
            "personId": code.person_id, "redirectUri": code.redirect_uri, "scope": code.scope,
            "codeChallenge": code.code_challenge,
            "codeChallengeMethod": code.code_challenge_method, "family": code.family,
            "expiresAt": code.expires_at, "usedAt": None,
        })  # fmt: skip

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
        self.db.refresh_tokens.insert_one({
            "_id": token.token_hash, "city": token.city, "clientId": token.client_id,
            "personId": token.person_id, "scope": token.scope, "family": token.family,
            "expiresAt": token.expires_at, "rotatedAt": None, "revokedAt": None,
        })  # fmt: skip

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
                    "$push": {"jtis": {"jti": jti, "exp": expires_at}},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the family exists and is revoked: the upsert could not insert
        return True

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
                self.deny(
                    "jti",
                    city,
                    issued["jti"],
                    at=moment,
                    ttl=int((issued["exp"] - moment).total_seconds()) + 60,
                )

    # The denylist the API checks on every request (through a short cache)

    def deny(self, kind: str, city: str, value: str, *, at: datetime, ttl: int) -> None:
        self.db.revocations.update_one(
            {"_id": f"{kind}:{city}:{value}"},
            {
                "$set": {
                    "kind": kind,
                    "city": city,
                    "value": value,
                    "revokedAt": at,
                    "expiresAt": at + timedelta(seconds=ttl + 120),
                }
            },
            upsert=True,
        )

    def is_denied(self, city: str, jti: str, client_id: str, subject: str, iat: int) -> bool:
        keys = [f"jti:{city}:{jti}", f"client:{city}:{client_id}", f"person:{city}:{subject}"]
        for doc in self.db.revocations.find({"_id": {"$in": keys}}):
            if doc["kind"] == "jti" or doc["revokedAt"].timestamp() >= iat:
                return True
        return False

    # Sign-in throttling and tickets

    def take_spaced_attempt(
        self,
        key: str,
        *,
        free: int,
        base_delay_seconds: int,
        max_delay_seconds: int,
        window_seconds: int,
    ) -> int:
        """Count an attempt under `key`; returns 0 when it may go ahead, else the seconds to
        wait. After `free` attempts each one sets a wait before the next, doubling each time
        (base, 2 x base, ... max); an attempt during the wait is refused and doubles it too.
        The count is compared and set in one update, so parallel attempts cannot share one
        free turn."""
        for _ in range(5):
            moment = now()
            doc = self.db.login_failures.find_one({"_id": key})
            live = doc is not None and doc["expiresAt"] > moment
            count = int(doc["count"]) + 1 if doc is not None and live else 1
            waiting = doc is not None and live and doc["notBefore"] > moment
            delay = 0 if count < free else base_delay_seconds * 2 ** min(count - free, 20)
            not_before = moment + timedelta(seconds=min(delay, max_delay_seconds))
            fields = {
                "count": count,
                "notBefore": not_before,
                "expiresAt": not_before + timedelta(seconds=window_seconds),
            }
            if doc is None:
                with contextlib.suppress(DuplicateKeyError):
                    self.db.login_failures.insert_one({"_id": key, **fields})
                    return 0
                continue
            taken = self.db.login_failures.update_one(
                {"_id": key, "count": doc["count"], "notBefore": doc["notBefore"]},
                {"$set": fields},
            )
            if taken.modified_count == 1:
                return max(math.ceil((not_before - moment).total_seconds()), 1) if waiting else 0
        return 1  # contended: other attempts under this key are being counted right now

    def take_attempt(self, key: str, *, window_seconds: int) -> int:
        """Count a sign-in attempt under `key` before it is checked, so parallel guesses
        cannot all slip under the limit; returns the count within the window."""
        return self.count_failure(key, window_seconds=window_seconds)

    def give_back_attempt(self, key: str) -> None:
        self.db.login_failures.update_one(
            {"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}}
        )

    def count_failure(self, key: str, *, window_seconds: int) -> int:
        # Create the counter first, then increment the existing document: concurrent upserts
        # that also increment can each see "no document" and lose an increment.
        with contextlib.suppress(DuplicateKeyError):
            self.db.login_failures.update_one(
                {"_id": key},
                {
                    "$setOnInsert": {
                        "count": 0,
                        "expiresAt": now() + timedelta(seconds=window_seconds),
                    }
                },
                upsert=True,
            )
        doc = self.db.login_failures.find_one_and_update(
            {"_id": key}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
        )
        return int(doc["count"]) if doc else 1

    def failures(self, keys: Sequence[str]) -> dict[str, int]:
        moment = now()
        return {
            doc["_id"]: int(doc["count"])
            for doc in self.db.login_failures.find({"_id": {"$in": list(keys)}})
            if doc["expiresAt"] > moment
        }

    def clear_failures(self, key: str) -> None:
        self.db.login_failures.delete_one({"_id": key})

    def save_ticket(
        self, ticket_hash: str, city: str, person_id: str, request_hash: str, *, ttl_seconds: int
    ) -> None:
        self.db.login_tickets.insert_one(
            {
                "_id": ticket_hash,
                "city": city,
                "personId": person_id,
                "request": request_hash,
                "expiresAt": now() + timedelta(seconds=ttl_seconds),
            }
        )

    def take_ticket(self, ticket_hash: str, city: str, request_hash: str) -> str | None:
        doc = self.db.login_tickets.find_one_and_delete(
            {"_id": ticket_hash, "city": city, "request": request_hash}
        )
        if doc is None or doc["expiresAt"] <= now():
            return None
        return str(doc["personId"])

    # Federation

    def trusted_issuer_city(self, issuer: str) -> str | None:
        doc = self.db.trusted_issuers.find_one({"_id": issuer}, {"city": 1})
        return str(doc["city"]) if doc else None

    def add_trusted_issuer(self, doc: Document) -> None:
        self.db.trusted_issuers.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    def link_federated(self, city: str, issuer: str, subject: str, person_id: str) -> str:
        """Link (issuer, subject) to a person; returns the person it is linked to (another
        one's, when the subject was linked already: one identity, one person)."""
        key = federated_key(issuer, subject)
        with contextlib.suppress(DuplicateKeyError):
            link = {"_id": key, "city": city, "issuer": issuer, "subject": subject}
            self.db.federated_links.insert_one({**link, "personId": person_id, "createdAt": now()})
            return person_id
        doc = self.db.federated_links.find_one({"_id": key})
        return str(doc["personId"]) if doc else person_id

    def unlink_federated(self, city: str, issuer: str, subject: str) -> bool:
        result = self.db.federated_links.delete_one(
            {"_id": federated_key(issuer, subject), "city": city}
        )
        return result.deleted_count == 1


def _code(doc: Document) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=doc["_id"], city=doc["city"], client_id=doc["clientId"],
        person_id=doc["personId"], redirect_uri=doc["redirectUri"], scope=doc["scope"],
        code_challenge=doc.get("codeChallenge"),
        code_challenge_method=doc.get("codeChallengeMethod"), family=doc["family"],
        expires_at=doc["expiresAt"],
    )  # fmt: skip


def _refresh(doc: Document) -> RefreshToken:
    return RefreshToken(
        token_hash=doc["_id"], city=doc["city"], client_id=doc["clientId"],
        person_id=doc["personId"], scope=doc["scope"], family=doc["family"],
        expires_at=doc["expiresAt"], rotated_at=doc.get("rotatedAt"),
        revoked_at=doc.get("revokedAt"),
    )  # fmt: skip


__all__ = ["Credentials", "OAuthStore"]
