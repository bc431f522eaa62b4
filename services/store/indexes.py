"""Every index the API relies on, declared once and created idempotently at start."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import CollectionInvalid

from services.store.database import Database, guarded

_NEWEST = [("createdAt", DESCENDING), ("_id", DESCENDING)]
_RECENT = [("updatedAt", DESCENDING), ("_id", DESCENDING)]


def _listing(prefix: str | None) -> list[IndexModel]:
    """Indexes for one filter path (or none) under both sort orders the API offers."""
    head = [(prefix, ASCENDING)] if prefix else []
    name = prefix or "all"
    return [
        IndexModel([*head, *_NEWEST], name=f"{name}_by_created"),
        IndexModel([*head, *_RECENT], name=f"{name}_by_updated"),
    ]


_FILTERS = [None, "city", "hazards", "sectors", "tags", "status", "urgency"]

INDEXES: dict[str, list[IndexModel]] = {
    "cities": [IndexModel([("country", ASCENDING), ("_id", ASCENDING)], name="country")],
    "people": [
        IndexModel(
            [("city", ASCENDING), ("username", ASCENDING)], name="city_username", unique=True
        ),
    ],
    "problems": [
        *[index for prefix in _FILTERS for index in _listing(prefix)],
        IndexModel([("keywords", ASCENDING)], name="keywords"),
    ],
    "solutions": [
        *[index for prefix in _FILTERS for index in _listing(prefix)],
        IndexModel([("keywords", ASCENDING)], name="keywords"),
        IndexModel([("problemIds", ASCENDING), *_NEWEST], name="problem_solutions"),
        IndexModel([("adaptedFrom.solutionId", ASCENDING), *_NEWEST], name="adaptations"),
    ],
    "comments": [
        IndexModel(
            [
                ("subjectId", ASCENDING),
                ("parentId", ASCENDING),
                ("createdAt", ASCENDING),
                ("_id", ASCENDING),
            ],
            name="thread",
        ),
        IndexModel(
            [("parentId", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)],
            name="replies",
        ),
    ],
    "events": [IndexModel([("occurredAt", ASCENDING)], name="occurred_at")],
    "realm_keys": [
        IndexModel([("city", ASCENDING), ("createdAt", DESCENDING)], name="city_keys"),
    ],
}


@guarded
async def ensure_indexes(db: Database, extra: Mapping[str, list[IndexModel]] | None = None) -> None:
    """Create missing indexes (ours and `extra`, e.g. the authorization server's); existing
    ones with the same definition are left alone."""
    existing = set(await db.db.list_collection_names())
    for collection, indexes in {**INDEXES, **(extra or {})}.items():
        if collection not in existing:
            # Creating collections outside transactions: MongoDB cannot create them inside one
            # on every version, and the first write of a collection is often transactional.
            with contextlib.suppress(CollectionInvalid):  # another process was first
                await db.db.create_collection(collection)
        await db.db[collection].create_indexes(indexes)
