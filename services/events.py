"""Use cases for the event log: live subscriptions that resume by cursor, and the feed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncGenerator, Callable

from services.errors import InvalidInput
from services.live import EventFilter, Hub
from services.models import Event
from services.pages import Page, PageRequest
from services.principal import Principal, Scope
from services.store import events as store
from services.store.database import Database, Document

REPLAY_BATCH = 200


def event_cursor(event: Event) -> str:
    """The opaque, resumable cursor of an event: its position in the log."""
    return base64.urlsafe_b64encode(f"ev:{event.seq}".encode()).decode().rstrip("=")


def parse_cursor(after: str | None) -> int | None:
    if after is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    kind, _, position = raw.partition(":")
    if kind != "ev" or not (position.isascii() and position.isdigit()) or len(position) > 18:
        raise InvalidInput("after", "is not an event cursor returned by this API")
    return int(position)


def _query(event_filter: EventFilter) -> Document:
    f = event_filter
    return store.event_query(
        cities=f.cities, hazards=[h.value for h in f.hazards],
        sectors=[s.value for s in f.sectors], tags=f.tags, types=[t.value for t in f.types],
        threads=f.threads)  # fmt: skip


async def follow(
    *,
    db: Database,
    hub: Hub,
    actor: Principal,
    event_filter: EventFilter,
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
    subscriber = hub.subscribe(event_filter, shared=shared)
    try:
        on_live()
        if position is None:
            position = hub.last_seq
        else:
            async for event in _logged(db, _query(event_filter), after=position):
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
        async for event in _logged(db, _query(event_filter), after=position):
            yield event


async def _logged(db: Database, query: Document, *, after: int) -> AsyncGenerator[Event]:
    while True:
        missed = await store.events_after(db, query, after=after, limit=REPLAY_BATCH)
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
    return await event_page(db, _query(event_filter.checked()), request)


async def event_page(db: Database, query: Document, request: PageRequest) -> Page[Event]:
    """A forward page of the events matching `query`, after the request's cursor."""
    request.validate()
    size, position = request.size, parse_cursor(request.after) or 0
    found = await store.events_after(db, query, after=position, limit=size + 1)
    shown = found[:size]

    async def count() -> int:
        return await store.count_events(db, query)

    return Page(
        items=shown,
        cursors=[event_cursor(e) for e in shown],
        has_next_page=len(found) > size,
        has_previous_page=request.after is not None,
        count=count,
    )
