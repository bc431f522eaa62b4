"""The append-only event log, written in the same transaction as the change it records."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from services.models import Event
from services.store.database import Database, guarded


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
