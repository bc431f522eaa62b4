"""Follows in MongoDB: one document per (person or whole city, kind, value)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.store.database import Database, guarded


def _id(city: str, subject: str, kind: str, value: str) -> str:
    return f"{city}:{subject}:{kind}:{value}"


@guarded
async def add(
    db: Database,
    *,
    city: str,
    subject: str,
    kind: str,
    value: str,
    at: datetime,
    session: AsyncClientSession | None = None,
) -> bool:
    """Add a follow unless it exists; whether it was new."""
    result = await db.db["follows"].update_one(
        {"_id": _id(city, subject, kind, value)},
        {
            "$setOnInsert": {
                "city": city,
                "subject": subject,
                "kind": kind,
                "value": value,
                "since": at,
            }
        },
        upsert=True,
        session=session,
    )
    return result.upserted_id is not None


@guarded
async def remove(db: Database, *, city: str, subject: str, kind: str, value: str) -> None:
    await db.db["follows"].delete_one({"_id": _id(city, subject, kind, value)})


@guarded
async def count(
    db: Database, *, city: str, subject: str, session: AsyncClientSession | None = None
) -> int:
    owned = {"city": city, "subject": subject}
    return await db.db["follows"].count_documents(owned, session=session)


@guarded
async def of(
    db: Database, *, city: str, subjects: Sequence[str]
) -> list[tuple[str, str, str, datetime]]:
    """(subject, kind, value, since) of the follows of `subjects` in `city`, oldest first."""
    cursor = db.db["follows"].find({"city": city, "subject": {"$in": list(subjects)}})
    return [
        (doc["subject"], doc["kind"], doc["value"], doc["since"])
        async for doc in cursor.sort("since", 1).limit(1000)
    ]


@guarded
async def cities_following(db: Database, *, kind: str, values: Sequence[str]) -> list[str]:
    """The cities that follow any of `values` of `kind` for the whole city, by slug
    (a city-wide follow's subject is "": services/follows.CITY_WIDE)."""
    if not values:
        return []
    cursor = db.db["follows"].find(
        {"subject": "", "kind": kind, "value": {"$in": list(values)}}, {"city": 1}
    )
    return sorted({doc["city"] async for doc in cursor.limit(100_000)})
