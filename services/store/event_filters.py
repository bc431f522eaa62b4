"""An EventFilter as stored in a document: a webhook's, and a person's saved filters."""

from __future__ import annotations

from cityexchange.services.models import EventFilter, EventType
from cityexchange.services.store.database import Document
from cityexchange.services.taxonomy import Hazard, Sector, Urgency


def filter_doc(f: EventFilter) -> Document:
    return {
        "cities": list(f.cities),
        "hazards": [h.value for h in f.hazards],
        "sectors": [s.value for s in f.sectors],
        "tags": list(f.tags),
        "types": [t.value for t in f.types],
        "threads": list(f.threads),
        "urgencies": [u.value for u in f.urgencies],
    }


def filter_from_doc(doc: Document) -> EventFilter:
    return EventFilter(
        cities=tuple(doc.get("cities", ())),
        hazards=tuple(Hazard(h) for h in doc["hazards"]),
        sectors=tuple(Sector(s) for s in doc["sectors"]),
        tags=tuple(doc["tags"]),
        types=tuple(EventType(t) for t in doc["types"]),
        threads=tuple(doc["threads"]),
        urgencies=tuple(Urgency(u) for u in doc.get("urgencies", ())),
    )
