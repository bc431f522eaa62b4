"""The append-only event log, written in the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from services.models import Event
from services.store.database import Database, guarded

T = TypeVar("T")


@guarded
async def append_event(db: Database, event: Event, *, session: AsyncClientSession) -> None:
    await db.events.insert_one(
        {
            "type": event.type.value,
            "occurredAt": event.occurred_at,
            "city": event.city,
            "actor": event.actor,
            "subject": {"kind": event.subject_kind, "id": event.subject_id},
            "hazards": [h.value for h in event.hazards],
            "sectors": [s.value for s in event.sectors],
            "tags": list(event.tags),
        },
        session=session,
    )


async def record(
    db: Database,
    write: Callable[[AsyncClientSession], Awaitable[T]],
    event: Callable[[T], Event | None],
) -> T:
    """Apply `write` and append its event in one transaction; no event when `event` says
    None. The transaction is retried on transient conflicts, so `write` must be idempotent
    up to its own guards (versions, `$ne` filters)."""

    async def work(session: AsyncClientSession) -> T:
        result = await write(session)
        happened = event(result)
        if happened is not None:
            await append_event(db, happened, session=session)
        return result

    return await db.in_transaction(work)
