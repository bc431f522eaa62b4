"""Shared rate-limit totals: one document per (budget, key, window), removed by a TTL index
once its window has ended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo import UpdateOne

from cityexchange.services.store.database import Database, guarded

COLLECTION = "rate_limits"


@guarded
async def add_usage(db: Database, increments: Sequence[tuple[str, int, int]]) -> dict[str, int]:
    """Add (document id, points, window end in epoch seconds) increments; the totals after."""
    collection = db.db[COLLECTION]
    writes = [
        UpdateOne(
            {"_id": id},
            {
                "$inc": {"used": points},
                "$setOnInsert": {"expiresAt": datetime.fromtimestamp(ends, tz=UTC)},
            },
            upsert=True,
        )
        for id, points, ends in increments
        if points
    ]
    if writes:
        await collection.bulk_write(writes, ordered=False)
    ids = [id for id, _, _ in increments]
    return {doc["_id"]: int(doc["used"]) async for doc in collection.find({"_id": {"$in": ids}})}
