"""Persisted documents in MongoDB: one per id, with its text. Learned ones carry `lastUsedAt`,
which a TTL index expires; registered ones have none and stay until replaced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from cityexchange.services.store.database import Database, guarded

COLLECTION = "persisted_documents"
UNUSED_SECONDS = 30 * 86_400  # a learned document goes this long after its last use (TTL)


class Stored(NamedTuple):
    text: str
    registered: bool
    last_used: datetime | None  # learned documents only


class Entry(NamedTuple):
    """A document of a manifest, to register."""

    id: str
    text: str
    name: str | None
    kind: str | None


@guarded
async def get(db: Database, id: str) -> Stored | None:
    """The document stored under `id`, if any."""
    doc = await db.db[COLLECTION].find_one({"_id": id})
    if doc is None:
        return None
    return Stored(str(doc["text"]), bool(doc.get("registered")), doc.get("lastUsedAt"))


@guarded
async def learn(db: Database, *, id: str, text: str, learner: str, at: datetime) -> None:
    """Store a learned document unless one is stored under its id already."""
    await db.db[COLLECTION].update_one(
        {"_id": id},
        {
            "$setOnInsert": {
                "text": text,
                "registered": False,
                "learnedBy": learner,
                "createdAt": at,
                "lastUsedAt": at,
            }
        },
        upsert=True,
    )


@guarded
async def learned_since(db: Database, *, learner: str, since: datetime) -> int:
    """How many documents `learner` made the server store since `since`."""
    return await db.db[COLLECTION].count_documents(
        {"learnedBy": learner, "createdAt": {"$gte": since}}
    )


@guarded
async def touch(db: Database, *, id: str, at: datetime, before: datetime) -> None:
    """Move a learned document's last use to `at`, if it was before `before` (so replicas that
    all saw it in use write it once)."""
    await db.db[COLLECTION].update_one(
        {"_id": id, "registered": False, "lastUsedAt": {"$lt": before}},
        {"$set": {"lastUsedAt": at}},
    )


@guarded
async def register(db: Database, registrations: Sequence[Entry], *, at: datetime) -> dict[str, str]:
    """Store registered documents; per id, "added", "updated" or "unchanged"."""
    collection = db.db[COLLECTION]
    outcomes: dict[str, str] = {}
    for registration in registrations:
        found = await collection.find_one({"_id": registration.id})
        if found is not None and found.get("registered") and found["text"] == registration.text:
            outcomes[registration.id] = "unchanged"
            continue
        await collection.update_one(
            {"_id": registration.id},
            {
                "$set": {
                    "text": registration.text,
                    "registered": True,
                    "name": registration.name,
                    "type": registration.kind,
                    "registeredAt": at,
                },
                "$unset": {"lastUsedAt": "", "learnedBy": ""},
                "$setOnInsert": {"createdAt": at},
            },
            upsert=True,
        )
        outcomes[registration.id] = "added" if found is None else "updated"
    return outcomes
