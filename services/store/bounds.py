"""The documents that make "at most N per owner" hold under concurrent writes.

Counting an owner's items and then inserting one races: two requests both count 19 of 20 and
both insert. A transaction that first writes the owner's bound document conflicts with every
other transaction that does (the later one retries, and counts again), so within it the count
and the insert hold together, on one server or a replica set alike. The document carries no
state a reader needs; `writes` only gives the update something to change.
"""

from __future__ import annotations

import contextlib

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from cityexchange.services.store.database import Database, guarded

COLLECTION = "bounds"


@guarded
async def prepare(db: Database, key: str) -> None:
    """Make sure `key`'s document exists, outside any transaction: two transactions that both
    insert it would fail on the unique `_id` rather than conflict and retry."""
    with contextlib.suppress(DuplicateKeyError):  # a concurrent first call made it
        await db.db[COLLECTION].update_one(
            {"_id": key}, {"$setOnInsert": {"writes": 0}}, upsert=True
        )


@guarded
async def hold(db: Database, key: str, *, session: AsyncClientSession) -> None:
    """Write `key`'s document in `session`'s transaction (after `prepare`), so that any other
    transaction holding it conflicts with this one."""
    await db.db[COLLECTION].update_one({"_id": key}, {"$inc": {"writes": 1}}, session=session)
