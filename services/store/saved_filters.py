"""A person's saved event filters in MongoDB: one document per (city, person, name)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.models import EventFilter
from cityexchange.services.store.database import Database, Document, guarded
from cityexchange.services.store.event_filters import filter_doc, filter_from_doc

COLLECTION = "saved_filters"


def _id(city: str, subject: str, name: str) -> str:
    return f"{city}:{subject}:{name}"


@guarded
async def save(
    db: Database,
    *,
    city: str,
    subject: str,
    name: str,
    event_filter: EventFilter,
    thread_kind: str,
    at: datetime,
    session: AsyncClientSession | None = None,
) -> datetime:
    """Save `event_filter` as `name`, replacing a filter of that name; when it was first saved."""
    doc = await db.db[COLLECTION].find_one_and_update(
        {"_id": _id(city, subject, name)},
        {
            "$set": {
                "filter": filter_doc(event_filter),
                "threadKind": thread_kind,
                "updatedAt": at,
            },
            "$setOnInsert": {"city": city, "subject": subject, "name": name, "createdAt": at},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
        projection={"createdAt": 1},
        session=session,
    )
    created: datetime = doc["createdAt"] if doc else at
    return created


@guarded
async def delete(db: Database, *, city: str, subject: str, name: str) -> bool:
    """Delete the filter `name`; whether there was one."""
    result = await db.db[COLLECTION].delete_one({"_id": _id(city, subject, name)})
    return result.deleted_count == 1


@guarded
async def get(
    db: Database, *, city: str, subject: str, name: str
) -> tuple[str, EventFilter, datetime, datetime, str] | None:
    """(name, filter, created, updated, thread kind) of the filter `name`, if there is one."""
    doc = await db.db[COLLECTION].find_one({"_id": _id(city, subject, name)})
    if doc is None:
        return None
    return _row(doc)


def _row(doc: Document) -> tuple[str, EventFilter, datetime, datetime, str]:
    return (
        doc["name"],
        filter_from_doc(doc["filter"]),
        doc["createdAt"],
        doc["updatedAt"],
        doc["threadKind"],
    )


@guarded
async def exists(
    db: Database,
    *,
    city: str,
    subject: str,
    name: str,
    session: AsyncClientSession | None = None,
) -> bool:
    found = {"_id": _id(city, subject, name)}
    return await db.db[COLLECTION].count_documents(found, session=session) > 0


@guarded
async def count(
    db: Database, *, city: str, subject: str, session: AsyncClientSession | None = None
) -> int:
    owned = {"city": city, "subject": subject}
    return await db.db[COLLECTION].count_documents(owned, session=session)


@guarded
async def of(
    db: Database, *, city: str, subject: str, limit: int
) -> Sequence[tuple[str, EventFilter, datetime, datetime, str]]:
    """(name, filter, created, updated, thread kind) of the person's filters, by name."""
    cursor = db.db[COLLECTION].find({"city": city, "subject": subject}).sort("name", 1)
    return [_row(doc) async for doc in cursor.limit(limit)]
