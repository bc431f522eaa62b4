"""Owner of `federated_links`: which of a city's people an admin linked an identity
provider's subject to.

Written by the realm admin (sync door), read by the API's Federation (async door)."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from cityexchange.services.clock import now
from cityexchange.services.store.database import Database, guarded
from cityexchange.services.store.unavailable import guarded_sync

COLLECTION = "federated_links"
INDEXES = [IndexModel([("city", ASCENDING), ("personId", ASCENDING)], name="person")]


def federated_key(issuer: str, subject: str) -> str:
    """A federated principal's identity: the subject means nothing without its issuer."""
    return f"{issuer}#{subject}"


@guarded
async def linked_person(db: Database, *, city: str, issuer: str, subject: str) -> str | None:
    """The id of the person of `city` an admin linked to this federated subject, if any."""
    doc = await db.db[COLLECTION].find_one(
        {"_id": federated_key(issuer, subject), "city": city}, {"personId": 1}
    )
    return str(doc["personId"]) if doc else None


@guarded_sync
def link(
    db: SyncDatabase[dict[str, Any]], city: str, issuer: str, subject: str, person_id: str
) -> str:
    """Link (issuer, subject) to a person; returns the person it is linked to (another
    one's, when the subject was linked already: one identity, one person)."""
    key = federated_key(issuer, subject)
    with contextlib.suppress(DuplicateKeyError):
        doc = {"_id": key, "city": city, "issuer": issuer, "subject": subject}
        db[COLLECTION].insert_one({**doc, "personId": person_id, "createdAt": now()})
        return person_id
    found = db[COLLECTION].find_one({"_id": key})
    return str(found["personId"]) if found else person_id


@guarded_sync
def unlink(db: SyncDatabase[dict[str, Any]], city: str, issuer: str, subject: str) -> bool:
    result = db[COLLECTION].delete_one({"_id": federated_key(issuer, subject), "city": city})
    return result.deleted_count == 1


@guarded_sync
def unlink_person(db: SyncDatabase[dict[str, Any]], city: str, person_id: str) -> None:
    """Drop every identity linked to a person (a revoked person is nobody's, whatever a
    provider signs)."""
    db[COLLECTION].delete_many({"city": city, "personId": person_id})
