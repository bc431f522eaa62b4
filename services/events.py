"""Use cases for the event log: live subscriptions that resume by cursor, and the feed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence

from cityexchange.services.errors import InvalidInput
from cityexchange.services.live import EventFilter, Hub
from cityexchange.services.models import CRISIS_ASKS, Event, Interests
from cityexchange.services.pages import Page, PageRequest, decode_cursor, encode_cursor
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import events as store
from cityexchange.services.store.database import Database, Document
from cityexchange.services.taxonomy import Urgency
from cityexchange.services.visibility import Viewer

REPLAY_BATCH = 200
_NOT_AN_EVENT_CURSOR = "an event cursor"


def event_cursor(position: int) -> str:
    """The opaque, resumable cursor of the event at `position` in the log ("ev:N")."""
    return encode_cursor(f"ev:{position}")


def parse_cursor(after: str | None) -> int | None:
    """The log position an event cursor holds; one not issued here is the caller's error."""
    if after is None:
        return None
    kind, _, text = decode_cursor(after, field="after", what=_NOT_AN_EVENT_CURSOR).partition(":")
    position = _position(text) if kind == "ev" else None
    if position is None:
        raise InvalidInput("after", f"is not {_NOT_AN_EVENT_CURSOR} returned by this API")
    return position


def _position(text: str) -> int | None:
    """A log position written in decimal (an int64, as the log's `_id`), else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _query(selection: EventFilter | Interests) -> Document:
    if isinstance(selection, Interests):
        return interests_query(selection)
    f = selection
    return store.event_query(
        cities=f.cities, hazards=[h.value for h in f.hazards],
        sectors=[s.value for s in f.sectors], tags=f.tags, types=[t.value for t in f.types],
        threads=f.threads, urgencies=[u.value for u in f.urgencies])  # fmt: skip


def interests_query(interests: Interests) -> Document:
    """The log's events about any of `interests` (their order does not matter to the query)."""
    i = interests
    return store.any_of(
        cities=sorted(i.cities),
        hazards=sorted(h.value for h in i.hazards),
        sectors=sorted(s.value for s in i.sectors),
        tags=sorted(i.tags),
        threads=sorted(i.threads),
        alternatives=[_query(f) for f in i.filters] + _crises_query(i.crises_of),
    )


def _crises_query(cities: frozenset[str]) -> list[Document]:
    """The crisis asks of `cities` (models.is_crisis_ask), as a query; none without cities."""
    if not cities:
        return []
    asks = [t.value for t in CRISIS_ASKS]
    crisis = Urgency.ACTIVE_CRISIS.value
    return [{"subjectCity": {"$in": sorted(cities)}, "urgency": crisis, "type": {"$in": asks}}]


async def follow(
    *,
    db: Database,
    hub: Hub,
    actor: Principal,
    event_filter: EventFilter | Interests,
    after: str | None,
    on_live: Callable[[], None] = lambda: None,
    shared: bool = False,
) -> AsyncGenerator[Event]:
    """Matching events after `after` from the log, then live ones: no gap, no duplicate.

    The live subscription starts first (`on_live` is called then); the log is read after it,
    so an event committed in between is seen by one of the two, and anything already seen is
    skipped by position. `shared`: this is a group's execution (schema/sharing.py), which the
    hub counts apart from clients' own subscriptions.
    """
    actor.require(Scope.READ)
    event_filter = event_filter.checked()
    position = parse_cursor(after)
    viewer = Viewer.of(actor)
    subscriber = hub.subscribe(event_filter, viewer, shared=shared)
    try:
        on_live()
        if position is None:
            position = hub.last_seq
        else:
            async for event in _logged(db, _query(event_filter), after=position, viewer=viewer):
                position = event.seq
                yield event
        while True:
            event = await subscriber.next()
            if event.seq > position:
                position = event.seq
                yield event
    finally:
        hub.unsubscribe(subscriber)


async def replay(
    *, db: Database, actor: Principal, event_filter: EventFilter, after: str | None
) -> AsyncGenerator[Event]:
    """Matching events after `after`, from the log, up to the last one committed; nothing
    without `after`. A shared subscription's member catches up this way, then takes its
    group's live events past the last one replayed."""
    actor.require(Scope.READ)
    event_filter = event_filter.checked()
    position = parse_cursor(after)
    if position is not None:
        query = _query(event_filter)
        async for event in _logged(db, query, after=position, viewer=Viewer.of(actor)):
            yield event


async def _logged(
    db: Database, query: Document, *, after: int, viewer: Viewer
) -> AsyncGenerator[Event]:
    while True:
        missed = await store.events_after(db, query, after=after, limit=REPLAY_BATCH, viewer=viewer)
        for event in missed:
            after = event.seq
            yield event
        if len(missed) < REPLAY_BATCH:
            return


async def feed(
    *, db: Database, actor: Principal, event_filter: EventFilter, request: PageRequest
) -> Page[Event]:
    """Matching events as a list, oldest first, for clients catching up over HTTP; the
    cursors are the same as the subscription's, so a client can switch between the two."""
    actor.require(Scope.READ)
    if request.last is not None or request.before is not None:
        raise InvalidInput("last", "the feed pages forward only, with first and after")
    return await event_page(db, _query(event_filter.checked()), request, viewer=Viewer.of(actor))


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Event | None]:
    """Events by id (the position of an Event's global id), aligned to `ids`, None where
    there is none; visible to whoever may read the feed, by the same rule."""
    actor.require(Scope.READ)
    positions = [_canonical_position(id) for id in ids]
    wanted = sorted({p for p in positions if p is not None})
    if not wanted:
        return [None] * len(ids)
    # Under "$and", so the store's own `_id > after` bound stays beside it.
    found = await store.events_after(
        db,
        {"$and": [{"_id": {"$in": wanted}}]},
        after=0,
        limit=len(wanted),
        viewer=Viewer.of(actor),
    )
    by_position = {event.seq: event for event in found}
    return [by_position.get(p) if p is not None else None for p in positions]


def _canonical_position(id: str) -> int | None:
    # Canonical decimals only: "007" would find event 7, whose id is not the one asked for.
    position = _position(id)
    return position if position is not None and str(position) == id else None


async def event_page(
    db: Database, query: Document, request: PageRequest, *, viewer: Viewer
) -> Page[Event]:
    """A forward page of the events matching `query` that `viewer` may see, after the
    request's cursor."""
    request.validate()
    size, position = request.size, parse_cursor(request.after) or 0
    found = await store.events_after(db, query, after=position, limit=size + 1, viewer=viewer)
    shown = found[:size]

    async def count() -> int:
        return await store.count_events(db, query, viewer=viewer)

    return Page(
        items=shown,
        cursors=[event_cursor(e.seq) for e in shown],
        has_next_page=len(found) > size,
        has_previous_page=request.after is not None,
        count=count,
    )
