"""Digest subscriptions in MongoDB: one document per person (`city:subject`), holding their
choice, the schedule and how far in the event log their last digest reached
(services/digests.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

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
        confirmed=bool(doc.get("confirmed")),
    )


@guarded
async def save(db: Database, subscription: DigestSubscription, *, at: datetime) -> None:
    """Subscribe, or change the subscription. A digest being made (claimed) keeps its due
    time; the new schedule starts after it."""
    s = subscription
    key = {"_id": _id(s.city, s.subject)}
    await db.db[COLLECTION].update_one(
        key,
        {
            "$set": {
                "email": s.email,
                "frequency": s.frequency.value,
                "language": s.language,
                "token": s.token,
                "confirmed": s.confirmed,
                "updatedAt": at,
            },
            "$setOnInsert": {
                "city": s.city,
                "subject": s.subject,
                "nextDue": s.next_due,
                "sentUpTo": s.sent_up_to,
                "claimedUpTo": None,
                "createdAt": at,
            },
        },
        upsert=True,
    )
    await db.db[COLLECTION].update_one(
        {**key, "claimedUpTo": None}, {"$set": {"nextDue": s.next_due}}
    )


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
async def confirm_by_token(db: Database, token: str) -> bool:
    """Confirm the address of the subscription whose link holds this token; whether one did."""
    result = await db.db[COLLECTION].update_one({"token": token}, {"$set": {"confirmed": True}})
    return result.matched_count == 1


@guarded
async def by_token(db: Database, token: str) -> DigestSubscription | None:
    doc = await db.db[COLLECTION].find_one({"token": token})
    return _subscription(doc) if doc else None


@guarded
async def due(db: Database, *, at: datetime, limit: int) -> list[DigestSubscription]:
    """Confirmed subscriptions whose digest is due by `at`, the longest waiting first."""
    cursor = db.db[COLLECTION].find({"nextDue": {"$lte": at}, "confirmed": True})
    return [_subscription(doc) async for doc in cursor.sort("nextDue", 1).limit(limit)]


@guarded
async def claim_range(
    db: Database, subscription: DigestSubscription, *, up_to: int, at: datetime, lease: timedelta
) -> DigestSubscription | None:
    """Claim the digest due at `subscription.next_due` for `lease`, fixing where it ends:
    `up_to`, or where the claim of a replica whose lease ran out fixed it (that stands). None
    when it is no longer due, or another replica's claim is still alive."""
    s = subscription
    found = {"_id": _id(s.city, s.subject), "nextDue": s.next_due}
    collection = db.db[COLLECTION]
    doc = await collection.find_one_and_update(
        {**found, "claimedUpTo": None},
        {"$set": {"claimedUpTo": up_to, "claimedAt": at}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:  # claimed before: taken over only once its claimer's lease is over
        doc = await collection.find_one_and_update(
            {**found, "claimedUpTo": {"$ne": None}, "claimedAt": {"$lt": at - lease}},
            {"$set": {"claimedAt": at}},
            return_document=ReturnDocument.AFTER,
        )
    return _subscription(doc) if doc else None


@guarded
async def advance(
    db: Database, claimed: DigestSubscription, *, next_due: datetime, sent_up_to: int
) -> bool:
    """The claimed digest is queued (or had nothing): schedule the next one, which starts
    after `sent_up_to`. Whether this call moved it (another replica may have)."""
    result = await db.db[COLLECTION].update_one(
        {
            "_id": _id(claimed.city, claimed.subject),
            "nextDue": claimed.next_due,
            "claimedUpTo": claimed.claimed_up_to,
        },
        {"$set": {"nextDue": next_due, "sentUpTo": sent_up_to, "claimedUpTo": None}},
    )
    return result.modified_count == 1


@guarded
async def postpone(db: Database, claimed: DigestSubscription, *, until: datetime) -> None:
    """Making the claimed digest failed: try it again at `until`, from where it started."""
    await db.db[COLLECTION].update_one(
        {"_id": _id(claimed.city, claimed.subject), "nextDue": claimed.next_due},
        {"$set": {"nextDue": until, "claimedUpTo": None}},
    )
