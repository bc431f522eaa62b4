"""Crisis alerts in MongoDB: where the alerting loop is in the event log, and one record per
(problem, city) alerted, so no city is alerted twice about one crisis
(services/crisis_alerts.py)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from cityexchange.services.store.database import Database, guarded

POSITION = "crisis-alerts"
COLLECTION = "crisis_alerts"


@guarded
async def position(db: Database, default: int) -> int:
    doc = await db.db["counters"].find_one_and_update(
        {"_id": POSITION},
        {"$setOnInsert": {"seq": default}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(doc.get("seq", default)) if doc else default


@guarded
async def advance(db: Database, seq: int) -> None:
    await db.db["counters"].update_one({"_id": POSITION}, {"$max": {"seq": seq}}, upsert=True)


@guarded
async def claim(db: Database, *, problem: str, city: str, event_seq: int, at: datetime) -> bool:
    """Whether `event_seq` is the event that alerts `city` to `problem`: the first to claim it
    (or the same event again, after a restart cut its alert short)."""
    doc = await db.db[COLLECTION].find_one_and_update(
        {"_id": f"{problem}:{city}"},
        {"$setOnInsert": {"problem": problem, "city": city, "eventSeq": event_seq, "at": at}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return doc is not None and int(doc["eventSeq"]) == event_seq


@guarded
async def alerted(db: Database, problem: str) -> list[str]:
    """The cities alerted to `problem`, by slug."""
    cursor = db.db[COLLECTION].find({"problem": problem}, {"city": 1}).sort("city", 1)
    return [doc["city"] async for doc in cursor.limit(10_000)]
