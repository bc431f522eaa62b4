"""Digest subscriptions in MongoDB: one document per person (`city:subject`), holding their
choice, the schedule and how far in the event log their last digest reached
(services/digests.py)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from cityexchange.services.models import DigestFrequency, DigestSubscription
from cityexchange.services.store.database import Database, Document, guarded

COLLECTION = "digests"


def _id(city: str, subject: str) -> str:
    return f"{city}:{subject}"


def _subscription(doc: Document) -> DigestSubscription:
    return DigestSubscription(
        city=doc["city"],
        subject=doc["subject"],
        email=doc["email"],
        frequency=DigestFrequency(doc["frequency"]),
        language=doc["language"],
        next_due=doc["nextDue"],
        sent_up_to=int(doc["sentUpTo"]),
        claimed_up_to=doc.get("claimedUpTo"),
        token=doc["token"],
    )


@guarded
async def save(
    db: Database, subscription: DigestSubscription, *, token: str, at: datetime
) -> DigestSubscription:
    """Subscribe, or change the subscription (a new unsubscribe token each time)."""
    s = subscription
    doc = await db.db[COLLECTION].find_one_and_update(
        {"_id": _id(s.city, s.subject)},
        {
            "$set": {
                "email": s.email,
                "frequency": s.frequency.value,
                "language": s.language,
                "nextDue": s.next_due,
                "token": token,
                "claimedUpTo": None,  # a digest of the old schedule being made is not this one
                "updatedAt": at,
            },
            "$setOnInsert": {
                "city": s.city,
                "subject": s.subject,
                "sentUpTo": s.sent_up_to,
                "createdAt": at,
            },
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        raise AssertionError("an upsert returning the document after it always has one")
    return _subscription(doc)


@guarded
async def get(db: Database, *, city: str, subject: str) -> DigestSubscription | None:
    doc = await db.db[COLLECTION].find_one({"_id": _id(city, subject)})
    return _subscription(doc) if doc else None


@guarded
async def delete(db: Database, *, city: str, subject: str) -> bool:
    result = await db.db[COLLECTION].delete_one({"_id": _id(city, subject)})
    return result.deleted_count == 1


@guarded
async def delete_by_token(db: Database, token: str) -> bool:
    """Unsubscribe whoever's link holds this token; whether anyone's did."""
    result = await db.db[COLLECTION].delete_one({"token": token})
    return result.deleted_count == 1


@guarded
async def by_token(db: Database, token: str) -> DigestSubscription | None:
    doc = await db.db[COLLECTION].find_one({"token": token})
    return _subscription(doc) if doc else None


@guarded
async def due(db: Database, *, at: datetime, limit: int) -> list[DigestSubscription]:
    """Subscriptions whose digest is due by `at`, the longest waiting first."""
    cursor = db.db[COLLECTION].find({"nextDue": {"$lte": at}}).sort("nextDue", 1)
    return [_subscription(doc) async for doc in cursor.limit(limit)]


@guarded
async def claim_range(
    db: Database, subscription: DigestSubscription, *, up_to: int
) -> DigestSubscription | None:
    """Fix how far the digest due at `subscription.next_due` reaches: `up_to`, unless another
    replica fixed it first (theirs stands). None when that digest is no longer due."""
    s = subscription
    found = {"_id": _id(s.city, s.subject), "nextDue": s.next_due}
    doc = await db.db[COLLECTION].find_one_and_update(
        {**found, "claimedUpTo": None},
        {"$set": {"claimedUpTo": up_to}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        doc = await db.db[COLLECTION].find_one(found)
    return _subscription(doc) if doc else None


@guarded
async def advance(db: Database, subscription: DigestSubscription, *, next_due: datetime) -> bool:
    """The digest due at `subscription.next_due` is queued: schedule the next one, which
    starts where it ended. Whether this call moved it (another replica may have)."""
    s = subscription
    result = await db.db[COLLECTION].update_one(
        {"_id": _id(s.city, s.subject), "nextDue": s.next_due},
        {
            "$set": {"nextDue": next_due, "sentUpTo": s.claimed_up_to, "claimedUpTo": None},
        },
    )
    return result.modified_count == 1
