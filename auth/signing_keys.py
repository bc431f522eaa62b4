"""Owner of `realm_keys`: each realm's private JWKs, generated on first use, never in the repo.

The API verifies with the async door (through RealmRegistry's cache); the authorization
server, which authlib runs in a worker thread, and the CLI use the sync door. Both doors
share this module's one query and one document format."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey
from pymongo import DESCENDING
from pymongo.database import Database as SyncDatabase

from cityexchange.services.clock import now
from cityexchange.services.store.database import Database, guarded
from cityexchange.services.store.unavailable import guarded_sync

SIGNING_ALG = "ES256"
# The newest signs; these many verify (a rotation keeps older tokens valid until they expire).
VERIFYING_KEYS = 10
COLLECTION = "realm_keys"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    city: str
    key: ECKey
    created_at: datetime


def new_signing_key(city: str) -> SigningKey:
    """A fresh P-256 key for a realm (not stored yet)."""
    kid = f"{city}-{secrets.token_urlsafe(9)}"
    key = ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": SIGNING_ALG}, private=True
    )
    return SigningKey(kid=kid, city=city, key=key, created_at=now())


def _doc(key: SigningKey) -> dict[str, Any]:
    return {
        "_id": key.kid,
        "city": key.city,
        "jwk": key.key.as_dict(private=True),
        "createdAt": key.created_at,
    }


def _key(doc: dict[str, Any]) -> SigningKey:
    return SigningKey(
        kid=doc["_id"],
        city=doc["city"],
        key=ECKey.import_key(doc["jwk"]),
        created_at=doc["createdAt"],
    )


_NEWEST_FIRST = [("createdAt", DESCENDING)]


@guarded
async def signing_keys(db: Database, city: str) -> list[SigningKey]:
    """A realm's keys, newest first; the newest signs, all of them verify."""
    cursor = db.db[COLLECTION].find({"city": city}, sort=_NEWEST_FIRST, limit=VERIFYING_KEYS)
    return [_key(doc) async for doc in cursor]


@guarded
async def add_signing_key(db: Database, city: str) -> SigningKey:
    """Generate and store a new P-256 key for a realm."""
    key = new_signing_key(city)
    await db.db[COLLECTION].insert_one(_doc(key))
    return key


async def current_signing_key(db: Database, city: str) -> SigningKey:
    """The key new tokens of `city` are signed with, created on first use."""
    keys = await signing_keys(db, city)
    return keys[0] if keys else await add_signing_key(db, city)


@guarded_sync
def signing_keys_sync(db: SyncDatabase[dict[str, Any]], city: str) -> list[SigningKey]:
    """`signing_keys`, for the authorization server's thread."""
    cursor = db[COLLECTION].find({"city": city}, sort=_NEWEST_FIRST, limit=VERIFYING_KEYS)
    return [_key(doc) for doc in cursor]


@guarded_sync
def add_signing_key_sync(db: SyncDatabase[dict[str, Any]], city: str) -> SigningKey:
    """`add_signing_key`, for the authorization server's thread and the CLI."""
    key = new_signing_key(city)
    db[COLLECTION].insert_one(_doc(key))
    return key


def current_signing_key_sync(db: SyncDatabase[dict[str, Any]], city: str) -> SigningKey:
    """`current_signing_key`, for the authorization server's thread."""
    keys = signing_keys_sync(db, city)
    return keys[0] if keys else add_signing_key_sync(db, city)
