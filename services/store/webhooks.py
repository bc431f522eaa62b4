"""Webhooks, their delivery queue and log, in MongoDB. Replicas coordinate here: a delivery
is claimed with a lease, so two processes never send the same attempt."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from cityexchange.services.clock import now
from cityexchange.services.errors import NotFound
from cityexchange.services.models import Attempt, Delivery, Webhook, WebhookFormat
from cityexchange.services.store.database import Database, Document, guarded, object_id
from cityexchange.services.store.event_filters import filter_doc, filter_from_doc

DISPATCH = "webhook-dispatch"


def _webhook(doc: Document) -> Webhook:
    return Webhook(
        id=str(doc["_id"]),
        city=doc["city"],
        url=doc["url"],
        event_filter=filter_from_doc(doc["filter"]),
        description=doc.get("description"),
        secret=doc["secret"],
        created_at=doc["createdAt"],
        disabled_at=doc.get("disabledAt"),
        disabled_reason=doc.get("disabledReason"),
        # Endpoints registered before formats existed receive the standard body.
        format=WebhookFormat(doc.get("format", WebhookFormat.STANDARD)),
        crisis_alerts=bool(doc.get("crisisAlerts", False)),
    )


def _delivery(doc: Document) -> Delivery:
    return Delivery(
        id=doc["_id"],
        webhook_id=doc["webhookId"],
        event_seq=int(doc["eventSeq"]),
        state=doc["state"],
        attempts=tuple(
            Attempt(a["at"], a.get("status"), a.get("error"), a["durationMs"])
            for a in doc.get("attempts", ())
        ),
        next_attempt_at=doc.get("dueAt") if doc["state"] == "pending" else None,
    )


@guarded
async def insert(
    db: Database, webhook: Webhook, *, session: AsyncClientSession | None = None
) -> Webhook:
    result = await db.db["webhooks"].insert_one(
        {
            "city": webhook.city,
            "url": webhook.url,
            "filter": filter_doc(webhook.event_filter),
            "description": webhook.description,
            "secret": webhook.secret,
            "format": webhook.format.value,
            "crisisAlerts": webhook.crisis_alerts,
            "createdAt": webhook.created_at,
            "disabledAt": None,
            "disabledReason": None,
            "failures": 0,
        },
        session=session,
    )
    return replace(webhook, id=str(result.inserted_id))


@guarded
async def count_of_city(
    db: Database, city: str, *, session: AsyncClientSession | None = None
) -> int:
    return await db.db["webhooks"].count_documents({"city": city}, session=session)


@guarded
async def of_city(db: Database, city: str) -> list[Webhook]:
    return [_webhook(d) async for d in db.db["webhooks"].find({"city": city}).sort("createdAt")]


@guarded
async def active(db: Database) -> list[Webhook]:
    return [_webhook(d) async for d in db.db["webhooks"].find({"disabledAt": None})]


@guarded
async def get(db: Database, id: str) -> Webhook | None:
    oid = object_id(id)
    doc = await db.db["webhooks"].find_one({"_id": oid}) if oid else None
    return _webhook(doc) if doc else None


async def _update(db: Database, id: str, update: Document) -> Webhook:
    doc = await db.db["webhooks"].find_one_and_update(
        {"_id": object_id(id)}, update, return_document=ReturnDocument.AFTER
    )
    if doc is None:
        raise NotFound("Webhook", id)
    return _webhook(doc)


@guarded
async def set_secret(db: Database, id: str, secret: str) -> Webhook:
    return await _update(db, id, {"$set": {"secret": secret}})


@guarded
async def enable(db: Database, id: str) -> Webhook:
    return await _update(
        db, id, {"$set": {"disabledAt": None, "disabledReason": None, "failures": 0}}
    )


@guarded
async def delete(db: Database, id: str) -> None:
    """Remove an endpoint, then its queue and delivery log. Not one transaction: a long log
    would not fit one. A delivery queued meanwhile is discarded when claimed."""
    await db.db["webhooks"].delete_one({"_id": object_id(id)})
    await db.db["webhook_deliveries"].delete_many({"webhookId": id})


@guarded
async def discard(db: Database, delivery_id: str) -> None:
    await db.db["webhook_deliveries"].delete_one({"_id": object_id(delivery_id)})


@guarded
async def note_outcome(db: Database, id: str, *, failed: bool, disable_after: int) -> None:
    """Count consecutive failed deliveries; past `disable_after`, disable with the reason."""
    hooks = db.db["webhooks"]
    if not failed:
        await hooks.update_one({"_id": object_id(id)}, {"$set": {"failures": 0}})
        return
    doc = await hooks.find_one_and_update(
        {"_id": object_id(id)}, {"$inc": {"failures": 1}}, return_document=ReturnDocument.AFTER
    )
    if doc and doc["failures"] >= disable_after and doc.get("disabledAt") is None:
        await hooks.update_one(
            {"_id": doc["_id"]},
            {
                "$set": {
                    "disabledAt": now(),
                    "disabledReason": f"{doc['failures']} deliveries in a row failed every attempt",
                }
            },
        )


@guarded
async def dispatch_position(db: Database, default: int) -> int:
    doc = await db.db["counters"].find_one_and_update(
        {"_id": DISPATCH},
        {"$setOnInsert": {"seq": default}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(doc.get("seq", default)) if doc else default


@guarded
async def advance_dispatch(db: Database, seq: int) -> None:
    await db.db["counters"].update_one({"_id": DISPATCH}, {"$max": {"seq": seq}}, upsert=True)


@guarded
async def enqueue(db: Database, webhook: Webhook, *, event_seq: int, event_at: datetime) -> None:
    """Queue one delivery; its id makes queueing idempotent across replicas."""
    with contextlib.suppress(DuplicateKeyError):
        await db.db["webhook_deliveries"].insert_one(
            {
                "_id": f"{webhook.id}:{event_seq}",
                "webhookId": webhook.id,
                "city": webhook.city,
                "eventSeq": event_seq,
                "eventAt": event_at,
                "state": "pending",
                "dueAt": now(),
                "attempts": [],
                "createdAt": now(),
            }
        )


@guarded
async def claim(
    db: Database,
    *,
    worker: str,
    lease_seconds: float,
    skip_webhooks: Collection[str] = (),
    skip_cities: Collection[str] = (),
) -> Delivery | None:
    """Take the next due delivery for `lease_seconds`, none of an endpoint or city in `skip_*`
    (this worker's busy ones); a crashed worker's lease runs out and the delivery is due again."""
    moment = now()
    query: Document = {
        "$or": [
            {"state": "pending", "dueAt": {"$lte": moment}},
            {"state": "sending", "leaseUntil": {"$lt": moment}},
        ]
    }
    if skip_webhooks:
        query["webhookId"] = {"$nin": list(skip_webhooks)}
    if skip_cities:
        query["city"] = {"$nin": list(skip_cities)}
    doc = await db.db["webhook_deliveries"].find_one_and_update(
        query,
        {
            "$set": {
                "state": "sending",
                "worker": worker,
                "leaseUntil": moment + timedelta(seconds=lease_seconds),
            }
        },
        sort=[("dueAt", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )
    return _delivery(doc) if doc else None


@guarded
async def release(db: Database, delivery_id: str, *, worker: str) -> None:
    """Give a claimed delivery back, due now and with no attempt recorded (at shutdown)."""
    await db.db["webhook_deliveries"].update_one(
        {"_id": delivery_id, "state": "sending", "worker": worker},
        {"$set": {"state": "pending", "dueAt": now()}, "$unset": {"leaseUntil": ""}},
    )


@guarded
async def finish_attempt(
    db: Database,
    delivery_id: str,
    attempt: Attempt,
    *,
    worker: str,
    state: str,
    due_at: datetime | None,
) -> None:
    update: dict[str, Any] = {
        "$push": {
            "attempts": {
                "at": attempt.at,
                "status": attempt.status,
                "error": attempt.error,
                "durationMs": attempt.duration_ms,
            }
        },
        "$set": {"state": state, "dueAt": due_at or attempt.at},
    }
    await db.db["webhook_deliveries"].update_one(
        {"_id": delivery_id, "state": "sending", "worker": worker}, update
    )


@guarded
async def deliveries_of(db: Database, webhook_id: str, *, limit: int) -> Sequence[Delivery]:
    cursor = (
        db.db["webhook_deliveries"]
        .find({"webhookId": webhook_id})
        .sort("eventSeq", DESCENDING)
        .limit(limit)
    )
    return [_delivery(doc) async for doc in cursor]


@guarded
async def get_delivery(db: Database, id: str) -> Delivery | None:
    doc = await db.db["webhook_deliveries"].find_one({"_id": id})
    return _delivery(doc) if doc else None


@guarded
async def requeue(db: Database, id: str) -> Delivery:
    doc = await db.db["webhook_deliveries"].find_one_and_update(
        {
            "_id": id,
            # a delivery in flight is not sent twice; one whose lease ran out is not in flight
            "$or": [{"state": {"$ne": "sending"}}, {"leaseUntil": {"$lt": now()}}],
        },
        {"$set": {"state": "pending", "dueAt": now()}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        raise NotFound("Delivery", id)
    return _delivery(doc)
