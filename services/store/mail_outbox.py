"""The mail outbox in MongoDB: one document per message, keyed by what it is about, so
queueing is idempotent; claims carry a lease (services/mail.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from cityexchange.services.clock import now
from cityexchange.services.models import Mail
from cityexchange.services.store.database import Database, Document, guarded

COLLECTION = "mail_outbox"


@guarded
async def insert(
    db: Database, key: str, mail: Mail, *, session: AsyncClientSession | None = None
) -> bool:
    try:
        await db.db[COLLECTION].insert_one(
            {
                "_id": key,
                "to": mail.to,
                "subject": mail.subject,
                "text": mail.text,
                "html": mail.html,
                "headers": dict(mail.headers),
                "state": "pending",
                "dueAt": now(),
                "attempts": 0,
                "createdAt": now(),
            },
            session=session,
        )
    except DuplicateKeyError:
        return False
    return True


@guarded
async def count_since(
    db: Database, *, prefix: str, since: datetime, session: AsyncClientSession | None = None
) -> int:
    """How many messages whose key starts with `prefix` were queued since `since`."""
    return await db.db[COLLECTION].count_documents(
        {"_id": {"$regex": f"^{re.escape(prefix)}"}, "createdAt": {"$gte": since}},
        session=session,
    )


@guarded
async def claim(
    db: Database, *, worker: str, at: datetime, lease: timedelta
) -> tuple[str, Mail, int] | None:
    """The next message due, now `sending` under `worker`'s lease: (key, mail, attempts)."""
    doc = await db.db[COLLECTION].find_one_and_update(
        {"state": "pending", "dueAt": {"$lte": at}},
        {"$set": {"state": "sending", "worker": worker, "leaseUntil": at + lease}},
        sort=[("dueAt", 1)],
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        return None
    return doc["_id"], _mail(doc), int(doc["attempts"])


def _mail(doc: Document) -> Mail:
    return Mail(doc["to"], doc["subject"], doc["text"], doc["html"], doc.get("headers", {}))


@guarded
async def finish(db: Database, key: str, *, worker: str, state: str, error: str | None) -> None:
    await db.db[COLLECTION].update_one(
        {"_id": key, "state": "sending", "worker": worker},
        {"$set": {"state": state, "error": error, "doneAt": now()}, "$inc": {"attempts": 1}},
    )


@guarded
async def retry(db: Database, key: str, *, worker: str, due_at: datetime, error: str) -> None:
    await db.db[COLLECTION].update_one(
        {"_id": key, "state": "sending", "worker": worker},
        {"$set": {"state": "pending", "dueAt": due_at, "error": error}, "$inc": {"attempts": 1}},
    )


@guarded
async def give_up_on_lost(db: Database, *, at: datetime) -> int:
    """Messages whose sender's lease ran out mid-send: `unknown`, never sent again (the
    server may have taken them). How many."""
    result = await db.db[COLLECTION].update_many(
        {"state": "sending", "leaseUntil": {"$lt": at}},
        {"$set": {"state": "unknown", "error": "the sender stopped while sending"}},
    )
    return result.modified_count


@guarded
async def of_state(db: Database, state: str) -> list[tuple[str, str]]:
    """(key, recipient) of the messages in `state` (for operators and tests)."""
    cursor = db.db[COLLECTION].find({"state": state}, {"to": 1}).sort("createdAt", 1)
    return [(doc["_id"], doc["to"]) async for doc in cursor.limit(1000)]
