"""The visibility rule as a query clause (services/visibility.py): one place for every read."""

from __future__ import annotations

from cityexchange.services.store.database import Document
from cityexchange.services.visibility import EVERYONE, Viewer

AUDIENCE = "aud"  # the field every readable document carries: the keys that may read it
WITHHELD = "audNot"  # events only: keys that still see the subject and are not told


def readable(viewer: Viewer) -> Document:
    """The clause a document must match for `viewer` to read it ({} for the service itself)."""
    if viewer.is_system:
        return {}
    return {AUDIENCE: {"$in": sorted(viewer.keys)}}


def readable_event(viewer: Viewer) -> Document:
    """Events: the subject's audience at the time, minus those a withdrawal is not for."""
    if viewer.is_system:
        return {}
    keys = sorted(viewer.keys)
    return {AUDIENCE: {"$in": keys}, WITHHELD: {"$nin": keys}}


def restricted(query: Document, viewer: Viewer) -> Document:
    """`query` and the rule, so that neither can widen the other."""
    return _both(query, readable(viewer))


def restricted_events(query: Document, viewer: Viewer) -> Document:
    """`query` over events and the events' rule."""
    return _both(query, readable_event(viewer))


def _both(query: Document, clause: Document) -> Document:
    if not clause:
        return query
    if not query:
        return clause
    return {"$and": [query, clause]}


def stored_audience(doc: Document) -> tuple[str, ...]:
    """A document's audience; one written before visibility existed is PUBLIC (the backfill
    in services/store/indexes.py gives it the field, so queries match it too)."""
    return tuple(doc.get(AUDIENCE, (EVERYONE,)))
