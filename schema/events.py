"""Events: the live subscription, the catch-up feed, and the Event type."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import datetime
from typing import Annotated

import strawberry

from cityexchange.schema.adoptions import Adoption
from cityexchange.schema.cities import City, Person, load_city
from cityexchange.schema.comments import Comment
from cityexchange.schema.context import Info
from cityexchange.schema.live_execution import OnItsOwn
from cityexchange.schema.nodes import load_node
from cityexchange.schema.problems import Problem
from cityexchange.schema.relay import Connection, Node, connection, expect_global_id, to_global_id
from cityexchange.schema.solutions import Solution
from cityexchange.schema.taxonomy import Hazard, Sector, Urgency
from cityexchange.services import events, follows, models
from cityexchange.services.live import EventFilter as DomainEventFilter
from cityexchange.services.models import EventType
from cityexchange.services.pages import PageRequest

strawberry.enum(EventType, description="What happened.")

EventSubject = Annotated[Problem | Solution | Comment | Adoption, strawberry.union("EventSubject")]


@strawberry.input(description="Values within a field are alternatives; fields combine (AND).")
class EventFilter:
    cities: list[str] | None = strawberry.field(
        default=None, description="Events by these cities or about their content."
    )
    hazards: list[Hazard] | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    types: list[EventType] | None = None
    thread: strawberry.ID | None = strawberry.field(
        default=None, description="A problem or solution: its own events and its discussion."
    )
    urgency: list[Urgency] | None = strawberry.field(
        default=None, description="Events about problems of these urgencies (ACTIVE_CRISIS asks)."
    )


_THREADS = ("Problem", "Solution")  # what a filter's thread may be
_THREAD_FIELD = ("filter", "thread")


def thread_kind(event_filter: EventFilter) -> str:
    """Whether the filter's thread is a problem or a solution ("Problem" when it has none)."""
    if event_filter.thread is None:
        return "Problem"
    return expect_global_id(event_filter.thread, _THREADS, field=_THREAD_FIELD)[0]


def domain_filter(event_filter: EventFilter | None) -> DomainEventFilter:
    if event_filter is None:
        return DomainEventFilter()
    f = event_filter
    threads = ()
    if f.thread is not None:
        threads = (expect_global_id(f.thread, _THREADS, field=_THREAD_FIELD)[1],)
    return DomainEventFilter(
        cities=tuple(f.cities or ()), hazards=tuple(f.hazards or ()),
        sectors=tuple(f.sectors or ()), tags=tuple(f.tags or ()), types=tuple(f.types or ()),
        threads=threads, urgencies=tuple(f.urgency or ()),
    )  # fmt: skip


@strawberry.type(description="Something that happened in the exchange.")
class Event(Node):
    cursor: str = strawberry.field(description="Resume after this event with `after`.")
    type: EventType
    occurred_at: datetime
    urgency: Urgency | None = strawberry.field(description="The problem's, for problem events.")
    domain: strawberry.Private[models.Event]

    @classmethod
    def from_domain(cls, event: models.Event) -> Event:
        return cls(
            id=to_global_id("Event", str(event.seq)),
            cursor=events.event_cursor(event.seq),
            type=event.type,
            occurred_at=event.occurred_at,
            urgency=event.urgency,
            domain=event,
        )

    @strawberry.field(description="The city that acted.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.domain.city)

    @strawberry.field(description="The person who acted, when a person did.")
    async def actor(self, info: Info) -> Person | None:
        person = await info.context.loaders.person_by_id.load(self.domain.actor)
        return Person.from_domain(person) if person else None

    @strawberry.field(
        description="The global id of what it happened to, even when that is gone or, as a "
        "WITHDRAWN event's subject, hidden from you now."
    )
    def subject_id(self) -> strawberry.ID:
        return to_global_id(self.domain.subject_kind, self.domain.subject_id)

    @strawberry.field(description="What it happened to; null once it is gone or hidden.")
    async def subject(self, info: Info) -> EventSubject | None:
        subject = await load_node(info, self.domain.subject_kind, self.domain.subject_id)
        return subject if isinstance(subject, Problem | Solution | Comment | Adoption) else None


@strawberry.type
class EventQueries:
    @strawberry.field(
        description="Events, oldest first, to catch up over HTTP; cursors are "
        "the same as the `events` subscription's."
    )
    async def feed(
        self,
        info: Info,
        filter: EventFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Event]:
        ctx = info.context
        page = await events.feed(
            db=ctx.db,
            actor=ctx.actor(),
            event_filter=domain_filter(filter),
            request=PageRequest(first=first, after=after),
        )
        return connection(page, Event.from_domain)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Live events matching `filter`. With `after` (an "
        "event's cursor), missed events come first, then live ones, with "
        "no gap and no duplicate."
    )
    async def events(
        self, info: Info, filter: EventFilter | None = None, after: str | None = None
    ) -> AsyncGenerator[Event]:
        ctx = info.context
        hub = ctx.hub
        if hub is None:
            raise RuntimeError("live events are not running")
        execution = ctx.live or OnItsOwn()  # a shared subscription's, or one of its own
        stream = execution.events(
            db=ctx.db, hub=hub, actor=ctx.actor(), event_filter=domain_filter(filter), after=after
        )
        async with aclosing(stream):
            async for event in stream:
                ctx.renew_loaders()  # each event is a fresh read of what it refers to
                yield Event.from_domain(event)

    @strawberry.subscription(
        description="Live events about what you and your city follow and what your saved "
        "filters select: viewer.feed, live. With `after`, missed events come first. What "
        "you follow is read when you subscribe: subscribe again (with `after`) to take in "
        "a follow or filter made since."
    )
    async def viewer_events(self, info: Info, after: str | None = None) -> AsyncGenerator[Event]:
        ctx = info.context
        if ctx.hub is None:
            raise RuntimeError("live events are not running")
        stream = follows.live(db=ctx.db, hub=ctx.hub, actor=ctx.actor(), after=after)
        async with aclosing(stream):
            async for event in stream:
                ctx.renew_loaders()
                yield Event.from_domain(event)
