"""Follows in MongoDB: one document per (person, kind, value)."""

from __future__ import annotations

from datetime import datetime

from services.store.database import Database, guarded


def _id(city: str, subject: str, kind: str, value: str) -> str:
    return f"{city}:{subject}:{kind}:{value}"


@guarded
async def add(
    db: Database, *, city: str, subject: str, kind: str, value: str, at: datetime
) -> None:
    await db.db["follows"].update_one(
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
    )


@guarded
async def remove(db: Database, *, city: str, subject: str, kind: str, value: str) -> None:
    await db.db["follows"].delete_one({"_id": _id(city, subject, kind, value)})


@guarded
async def count(db: Database, *, city: str, subject: str) -> int:
    return await db.db["follows"].count_documents({"city": city, "subject": subject})


@guarded
async def of(db: Database, *, city: str, subject: str) -> list[tuple[str, str, datetime]]:
    cursor = db.db["follows"].find({"city": city, "subject": subject}).sort("since", 1)
    return [(doc["kind"], doc["value"], doc["since"]) async for doc in cursor.limit(500)]
