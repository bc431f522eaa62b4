"""Owner of `login_failures` and `login_tickets`: sign-in throttling counters, and the
single-use tickets that carry a signed-in person from the password page to consent."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from cityexchange.services.clock import now
from cityexchange.services.store.unavailable import guarded_sync

SyncDb = SyncDatabase[dict[str, Any]]
FAILURES = "login_failures"
TICKETS = "login_tickets"
_TTL = IndexModel([("expiresAt", ASCENDING)], name="ttl", expireAfterSeconds=0)
INDEXES = {FAILURES: [_TTL], TICKETS: [_TTL]}


@guarded_sync
def take_spaced_attempt(
    db: SyncDb,
    key: str,
    *,
    free: int,
    base_delay_seconds: int,
    max_delay_seconds: int,
    window_seconds: int,
) -> int:
    """Count an attempt under `key`; returns 0 when it may go ahead, else the seconds to
    wait. After `free` attempts each one sets a wait before the next, doubling each time
    (base, 2 x base, ... max); an attempt during the wait is refused and doubles it too.
    The count is compared and set in one update, so parallel attempts cannot share one
    free turn."""
    failures = db[FAILURES]
    for _ in range(5):
        moment = now()
        doc = failures.find_one({"_id": key})
        live = doc is not None and doc["expiresAt"] > moment
        count = int(doc["count"]) + 1 if doc is not None and live else 1
        waiting = doc is not None and live and doc["notBefore"] > moment
        delay = 0 if count < free else base_delay_seconds * 2 ** min(count - free, 20)
        not_before = moment + timedelta(seconds=min(delay, max_delay_seconds))
        fields = {
            "count": count,
            "notBefore": not_before,
            "expiresAt": not_before + timedelta(seconds=window_seconds),
        }
        if doc is None:
            with contextlib.suppress(DuplicateKeyError):
                failures.insert_one({"_id": key, **fields})
                return 0
            continue
        taken = failures.update_one(
            {"_id": key, "count": doc["count"], "notBefore": doc["notBefore"]},
            {"$set": fields},
        )
        if taken.modified_count == 1:
            return max(math.ceil((not_before - moment).total_seconds()), 1) if waiting else 0
    return 1  # contended: other attempts under this key are being counted right now


@guarded_sync
def count_failure(db: SyncDb, key: str, *, window_seconds: int) -> int:
    """Count an attempt or failure under `key`; returns the count within the window."""
    # Create the counter first, then increment the existing document: concurrent upserts
    # that also increment can each see "no document" and lose an increment.
    with contextlib.suppress(DuplicateKeyError):
        db[FAILURES].update_one(
            {"_id": key},
            {"$setOnInsert": {"count": 0, "expiresAt": now() + timedelta(seconds=window_seconds)}},
            upsert=True,
        )
    doc = db[FAILURES].find_one_and_update(
        {"_id": key}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
    )
    return int(doc["count"]) if doc else 1


def take_attempt(db: SyncDb, key: str, *, window_seconds: int) -> int:
    """Count a sign-in attempt under `key` before it is checked, so parallel guesses
    cannot all slip under the limit; returns the count within the window."""
    return count_failure(db, key, window_seconds=window_seconds)


@guarded_sync
def give_back_attempt(db: SyncDb, key: str) -> None:
    db[FAILURES].update_one({"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})


@guarded_sync
def failures(db: SyncDb, keys: Sequence[str]) -> dict[str, int]:
    moment = now()
    return {
        doc["_id"]: int(doc["count"])
        for doc in db[FAILURES].find({"_id": {"$in": list(keys)}})
        if doc["expiresAt"] > moment
    }


@guarded_sync
def clear_failures(db: SyncDb, key: str) -> None:
    db[FAILURES].delete_one({"_id": key})


@guarded_sync
def save_ticket(
    db: SyncDb, ticket_hash: str, city: str, person_id: str, request_hash: str, *, ttl_seconds: int
) -> None:
    db[TICKETS].insert_one(
        {
            "_id": ticket_hash,
            "city": city,
            "personId": person_id,
            "request": request_hash,
            "expiresAt": now() + timedelta(seconds=ttl_seconds),
        }
    )


@guarded_sync
def take_ticket(db: SyncDb, ticket_hash: str, city: str, request_hash: str) -> str | None:
    """The person a ticket was issued to, once: a ticket is deleted as it is taken."""
    doc = db[TICKETS].find_one_and_delete(
        {"_id": ticket_hash, "city": city, "request": request_hash}
    )
    if doc is None or doc["expiresAt"] <= now():
        return None
    return str(doc["personId"])
