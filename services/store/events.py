"""The append-only event log, written in the same transaction as the change it records.

Every event gets the next number of one counter inside that transaction; the number is the
event's `_id` and its cursor. Two transactions that both take a number conflict on the counter
(the second is retried), so numbers follow commit order, and a reader that has seen event N has
seen every event before it (no gap, no duplicate when resuming from a cursor). A commit is
acknowledged only once journaled (w majority, j), so no number is handed out twice across a
crash.

A transaction's snapshot is taken at its first statement, and it conflicts on the counter
whenever another transaction committed a new number after that snapshot, however late it takes
its own. So the writers of one process run these transactions one at a time
(`Database.in_transaction(exclusive=True)`): they queue in the process instead of conflicting
and retrying in the database. That is the design's ceiling: 1 / (one transaction's time)
writes per second per process, the time being its statements plus a commit that waits for a
majority of the replica set to journal it. API replicas still conflict with each other on the
counter (it is free again at the primary's local commit) and retry with backoff, so replicas
add little. On a sharded cluster the counter lives on one shard: a write whose documents live
on another becomes a two-phase-commit transaction through it, slower, and the ceiling does not
grow with shards. Measured on the embedded database by bench/writes.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.models import Event, EventType
from cityexchange.services.store import idempotency
from cityexchange.services.store.database import Database, Document, guarded
from cityexchange.services.store.visibility import (
    AUDIENCE,
    WITHHELD,
    restricted_events,
    stored_audience,
)
from cityexchange.services.taxonomy import Hazard, Sector, Urgency
from cityexchange.services.visibility import Viewer

T = TypeVar("T")
COUNTER = "events"


def event_doc(event: Event, seq: int) -> Document:
    return {
        "_id": seq,
        "type": event.type.value,
        "occurredAt": event.occurred_at,
        "city": event.city,
        "actor": event.actor,
        "subject": {"kind": event.subject_kind, "id": event.subject_id},
        "subjectCity": event.subject_city,
        "thread": event.thread_id,
        "hazards": [h.value for h in event.hazards],
        "sectors": [s.value for s in event.sectors],
        "tags": list(event.tags),
        "urgency": event.urgency.value if event.urgency else None,
        AUDIENCE: list(event.audience),
        **({WITHHELD: list(event.withheld)} if event.withheld else {}),
    }


def event_from_doc(doc: Document) -> Event:
    return Event(
        type=EventType(doc["type"]), occurred_at=doc["occurredAt"], city=doc["city"],
        actor=doc["actor"], subject_kind=doc["subject"]["kind"],
        subject_id=str(doc["subject"]["id"]), subject_city=doc.get("subjectCity", ""),
        thread_id=doc.get("thread", ""), hazards=tuple(Hazard(h) for h in doc["hazards"]),
        sectors=tuple(Sector(s) for s in doc["sectors"]), tags=tuple(doc["tags"]),
        seq=int(doc["_id"]), urgency=Urgency(doc["urgency"]) if doc.get("urgency") else None,
        audience=stored_audience(doc), withheld=tuple(doc.get(WITHHELD, ())),
    )  # fmt: skip


@guarded
async def append_event(db: Database, event: Event, *, session: AsyncClientSession) -> int:
    counter = await db.db["counters"].find_one_and_update(
        {"_id": COUNTER},
        {"$inc": {"seq": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    seq = int(counter["seq"]) if counter else 1
    await db.events.insert_one(event_doc(event, seq), session=session)
    return seq


async def record(
    db: Database,
    write: Callable[[AsyncClientSession], Awaitable[T]],
    event: Callable[[T], Event | Sequence[Event] | None],
) -> T:
    """Apply `write` and append its event (or events, in order) in one transaction; no event
    when `event` says None. The transaction is retried on transient conflicts, so `write`
    must be idempotent up to its own guards (versions, `$ne` filters). A pending
    clientMutationId claim is recorded in the same transaction (services/store/idempotency.py).
    """
    claim = idempotency.take()

    async def work(session: AsyncClientSession) -> T:
        result = await write(session)
        if claim is not None:
            await idempotency.insert(
                db, claim, result_id=idempotency.id_of(result), session=session
            )
        happened = event(result)
        for each in [happened] if isinstance(happened, Event) else happened or ():
            await append_event(db, each, session=session)
        return result

    # Exclusive: every such transaction writes the counter (see the module's docstring).
    return await db.in_transaction(work, exclusive=True)


@guarded
async def events_after(
    db: Database, query: Document, *, after: int, limit: int, viewer: Viewer
) -> list[Event]:
    """Events past `after` matching `query` that `viewer` may see, oldest first (replay and
    catch-up)."""
    wanted = restricted_events({"_id": {"$gt": after}, **query}, viewer)
    cursor = db.events.find(wanted).sort("_id", ASCENDING)
    return [event_from_doc(doc) async for doc in cursor.limit(limit).batch_size(limit)]


@guarded
async def event_by_seq(db: Database, seq: int) -> Event | None:
    doc = await db.events.find_one({"_id": seq})
    return event_from_doc(doc) if doc else None


@guarded
async def latest_seq(db: Database) -> int:
    doc = await db.events.find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
    return int(doc["_id"]) if doc else 0


def event_query(
    *,
    cities: Sequence[str] = (),
    hazards: Sequence[str] = (),
    sectors: Sequence[str] = (),
    tags: Sequence[str] = (),
    types: Sequence[str] = (),
    threads: Sequence[str] = (),
    urgencies: Sequence[str] = (),
) -> Document:
    """A query over typed filter values only; values within a field are alternatives."""
    clauses: list[Document] = []
    if cities:  # an event concerns a city when it acts, or when its subject is the city's
        clauses.append(
            {"$or": [{"city": {"$in": list(cities)}}, {"subjectCity": {"$in": list(cities)}}]}
        )
    for field, values in (
        ("hazards", hazards),
        ("sectors", sectors),
        ("tags", tags),
        ("type", types),
        ("thread", threads),
        ("urgency", urgencies),
    ):
        if values:
            clauses.append({field: {"$in": [str(v) for v in values]}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def any_of(
    *,
    cities: Sequence[str],
    hazards: Sequence[str],
    sectors: Sequence[str],
    tags: Sequence[str],
    threads: Sequence[str],
    alternatives: Sequence[Document] = (),
) -> Document:
    """Events about any of these, or matching any of the `alternatives` (event_query's): a
    follower's feed. Nothing when nothing is followed."""
    either: list[Document] = []
    if cities:
        either += [{"city": {"$in": list(cities)}}, {"subjectCity": {"$in": list(cities)}}]
    for field, values in (
        ("hazards", hazards),
        ("sectors", sectors),
        ("tags", tags),
        ("thread", threads),
    ):
        if values:
            either.append({field: {"$in": list(values)}})
    either += alternatives  # an empty one ({}) matches every event, as that filter would
    return {"$or": either} if either else {"_id": {"$exists": False}}


@guarded
async def count_events(db: Database, query: Document, *, viewer: Viewer) -> int:
    return await db.events.count_documents(restricted_events(query, viewer))


__all__ = [
    "Any",
    "append_event",
    "event_from_doc",
    "event_query",
    "events_after",
    "latest_seq",
    "record",
]
