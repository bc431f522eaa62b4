"""Owner of `trusted_issuers`: the identity providers whose tokens a city accepts.

Written by the realm admin (sync door: the CLI and the admin API's worker thread), read by
the API's Federation (async door)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database as SyncDatabase

from cityexchange.services.store.database import Database, guarded
from cityexchange.services.store.unavailable import guarded_sync

COLLECTION = "trusted_issuers"
INDEXES = [IndexModel([("city", ASCENDING)], name="city")]


@guarded
async def trusted_issuers(db: Database) -> list[dict[str, Any]]:
    """Every trusted identity provider's document (`_id` is its issuer)."""
    return [doc async for doc in db.db[COLLECTION].find({})]


@guarded_sync
def trusting_city(db: SyncDatabase[dict[str, Any]], issuer: str) -> str | None:
    """The city that trusts `issuer`, if one does."""
    doc = db[COLLECTION].find_one({"_id": issuer}, {"city": 1})
    return str(doc["city"]) if doc else None


@guarded_sync
def trust(db: SyncDatabase[dict[str, Any]], doc: dict[str, Any]) -> None:
    """Trust (or re-configure) the issuer `doc["_id"]`."""
    db[COLLECTION].replace_one({"_id": doc["_id"]}, doc, upsert=True)
