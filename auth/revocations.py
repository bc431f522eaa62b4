"""Owner of `revocations`: the denylist of token ids, clients and people, and the one rule
that says whether it denies a token.

Revocations are written by the authorization server and the realm admin (sync door) and
read by the API's Denylist every few seconds (async door) and by introspection (sync)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database as SyncDatabase

from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database, guarded
from cityexchange.services.store.unavailable import guarded_sync

COLLECTION = "revocations"
INDEXES = [IndexModel([("expiresAt", ASCENDING)], name="ttl", expireAfterSeconds=0)]
# An entry outlives what it denies by this much, for clocks that disagree a little.
GRACE_SECONDS = 120

Kind = Literal["jti", "client", "person"]


def entry_id(kind: Kind, city: str, value: str) -> str:
    return f"{kind}:{city}:{value}"


def denies(entries: Mapping[str, datetime], principal: Principal) -> bool:
    """Whether the token was revoked, or its client or person was after it was issued."""
    city = principal.city
    if principal.token_id and entry_id("jti", city, principal.token_id) in entries:
        return True
    for key in (
        entry_id("client", city, principal.client_id),
        entry_id("person", city, principal.subject),
    ):
        revoked_at = entries.get(key)
        if revoked_at is not None and revoked_at.timestamp() >= principal.issued_at:
            return True
    return False


def _keys(principal: Principal) -> list[str]:
    city = principal.city
    return [
        entry_id("jti", city, principal.token_id),
        entry_id("client", city, principal.client_id),
        entry_id("person", city, principal.subject),
    ]


@guarded
async def entries(db: Database) -> dict[str, datetime]:
    """The whole denylist, each entry with when it was revoked."""
    return {doc["_id"]: doc["revokedAt"] async for doc in db.db[COLLECTION].find({})}


@guarded_sync
def deny(
    db: SyncDatabase[dict[str, Any]], kind: Kind, city: str, value: str, *, at: datetime, ttl: int
) -> None:
    """Deny a token id, or every token of a client or person issued until `at`, for `ttl` s."""
    db[COLLECTION].update_one(
        {"_id": entry_id(kind, city, value)},
        {
            "$set": {
                "kind": kind,
                "city": city,
                "value": value,
                "revokedAt": at,
                "expiresAt": at + timedelta(seconds=ttl + GRACE_SECONDS),
            }
        },
        upsert=True,
    )


@guarded_sync
def is_denied_sync(db: SyncDatabase[dict[str, Any]], principal: Principal) -> bool:
    """`denies`, read straight from the database (introspection, in the server's thread)."""
    found = db[COLLECTION].find({"_id": {"$in": _keys(principal)}}, {"revokedAt": 1})
    return denies({doc["_id"]: doc["revokedAt"] for doc in found}, principal)
