"""Realm signing keys in MongoDB: private JWKs, generated on first use, never in the repo."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey
from pymongo import DESCENDING

from services.clock import now
from services.store.database import Database, guarded

SIGNING_ALG = "ES256"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    city: str
    key: ECKey
    created_at: datetime


def signing_key_from_doc(doc: dict[str, Any]) -> SigningKey:
    return SigningKey(
        kid=doc["_id"],
        city=doc["city"],
        key=ECKey.import_key(doc["jwk"]),
        created_at=doc["createdAt"],
    )


@guarded
async def signing_keys(db: Database, city: str) -> list[SigningKey]:
    """A realm's keys, newest first; the newest signs, all of them verify."""
    cursor = db.realm_keys.find({"city": city}).sort("createdAt", DESCENDING).limit(10)
    return [signing_key_from_doc(doc) async for doc in cursor]


@guarded
async def add_signing_key(db: Database, city: str) -> SigningKey:
    """Generate and store a new P-256 key for a realm."""
    record = new_signing_key(city)
    await db.realm_keys.insert_one(signing_key_doc(record))
    return record


def new_signing_key(city: str) -> SigningKey:
    """A fresh P-256 key for a realm (not stored yet)."""
    kid = f"{city}-{secrets.token_urlsafe(9)}"
    key = ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": SIGNING_ALG}, private=True
    )
    return SigningKey(kid=kid, city=city, key=key, created_at=now())


def signing_key_doc(key: SigningKey) -> dict[str, Any]:
    return {
        "_id": key.kid,
        "city": key.city,
        "jwk": key.key.as_dict(private=True),
        "createdAt": key.created_at,
    }


async def current_signing_key(db: Database, city: str) -> SigningKey:
    """The key new tokens of `city` are signed with, created on first use."""
    keys = await signing_keys(db, city)
    return keys[0] if keys else await add_signing_key(db, city)


@guarded
async def revocations(db: Database) -> dict[str, datetime]:
    """The denylist: revoked token ids, clients and people, with when they were revoked."""
    return {doc["_id"]: doc["revokedAt"] async for doc in db.db["revocations"].find({})}


@guarded
async def trusted_issuers(db: Database) -> list[dict[str, Any]]:
    """Identity providers whose tokens a city accepts (federation)."""
    return [doc async for doc in db.db["trusted_issuers"].find({})]


@guarded
async def city_slugs(db: Database) -> frozenset[str]:
    """Every registered city, i.e. every realm."""
    return frozenset([doc["_id"] async for doc in db.cities.find({}, {"_id": 1})])


def federated_key(issuer: str, subject: str) -> str:
    """A federated principal's identity: the subject means nothing without its issuer."""
    return f"{issuer}#{subject}"


@guarded
async def linked_person(db: Database, *, city: str, issuer: str, subject: str) -> str | None:
    """The id of the person of `city` an admin linked to this federated subject, if any."""
    doc = await db.db["federated_links"].find_one(
        {"_id": federated_key(issuer, subject), "city": city}, {"personId": 1}
    )
    return str(doc["personId"]) if doc else None
