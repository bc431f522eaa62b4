"""Follows: a person keeps track of cities, hazards, sectors, tags, problems and solutions;
their feed and their live events (`viewerEvents`) are the events of what they and their city
follow, and of the filters they saved (services/saved_filters.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cityexchange.services import crisis_alerts, events, limits, saved_filters
from cityexchange.services.clock import now
from cityexchange.services.comments import thread_of
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.live import Hub
from cityexchange.services.models import Event, EventType, Interests
from cityexchange.services.pages import Page, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import bounds
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import follows as store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, Sector
from cityexchange.services.visibility import Viewer

MAX_FOLLOWS = 200


class FollowKind(StrEnum):
    CITY = "CITY"
    HAZARD = "HAZARD"
    SECTOR = "SECTOR"
    TAG = "TAG"
    PROBLEM = "PROBLEM"
    SOLUTION = "SOLUTION"


CITY_WIDE = ""  # the `subject` of a follow made for a whole city
_THREAD_KINDS = {"PROBLEM": "Problem", "SOLUTION": "Solution"}


@dataclass(frozen=True, slots=True)
class Follow:
    kind: FollowKind
    value: str  # a city slug, a hazard, a sector, a tag, or a problem's or solution's id
    since: datetime
    for_city: bool = False  # made for the caller's whole city, not only the caller


def _checked(kind: FollowKind, value: str) -> str:
    value = limits.text("value", value, max_length=100)
    if kind is FollowKind.HAZARD and value not in Hazard.__members__:
        raise InvalidInput("value", "is not a hazard")
    if kind is FollowKind.SECTOR and value not in Sector.__members__:
        raise InvalidInput("value", "is not a sector")
    return limits.tags("value", [value])[0] if kind is FollowKind.TAG else value


def _owner(actor: Principal, for_city: bool) -> str:
    """Whose follow this is: the caller, or (with `publish`) the caller's whole city."""
    actor.require(Scope.PUBLISH if for_city else Scope.READ)
    return CITY_WIDE if for_city else actor.subject


async def follow(
    *, db: Database, actor: Principal, kind: FollowKind, value: str, for_city: bool = False
) -> list[Follow]:
    """Follow something (idempotent); the caller's follows afterwards. A city following a
    problem or solution is news to its owner: that emits FOLLOWED_BY_CITY."""
    subject = _owner(actor, for_city)
    checked = _checked(kind, value)
    thread = None
    if kind.value in _THREAD_KINDS:
        # NotFound if there is none or the caller may not see it
        thread = await thread_of(db, _THREAD_KINDS[kind.value], checked, viewer=Viewer.of(actor))
    if kind is FollowKind.CITY:
        (city,) = await city_store.cities_by_slugs(db, [checked])
        if city is None:
            raise NotFound("City", checked)
    event = thread.own_event(EventType.FOLLOWED_BY_CITY, actor) if thread and for_city else None
    bound = f"follows:{actor.city}:{subject}"

    async def write(session: Any) -> bool:
        await bounds.hold(db, bound, session=session)
        owned = await store.count(db, city=actor.city, subject=subject, session=session)
        if owned >= MAX_FOLLOWS:
            raise InvalidInput("value", f"you follow {MAX_FOLLOWS} things already")
        return await store.add(
            db,
            city=actor.city,
            subject=subject,
            kind=kind.value,
            value=checked,
            at=now(),
            session=session,
        )

    await bounds.prepare(db, bound)
    await event_store.record(db, write, lambda added: event if added else None)
    return await follows_of(db=db, actor=actor)


async def unfollow(
    *, db: Database, actor: Principal, kind: FollowKind, value: str, for_city: bool = False
) -> list[Follow]:
    subject = _owner(actor, for_city)
    await store.remove(
        db, city=actor.city, subject=subject, kind=kind.value, value=_checked(kind, value)
    )
    return await follows_of(db=db, actor=actor)


async def follows_of(*, db: Database, actor: Principal) -> list[Follow]:
    """The caller's own follows and their city's."""
    actor.require(Scope.READ)
    found = await store.of(db, city=actor.city, subjects=(actor.subject, CITY_WIDE))
    return [
        Follow(FollowKind(kind), value, since, for_city=subject == CITY_WIDE)
        for subject, kind, value, since in found
    ]


async def interests(*, db: Database, actor: Principal) -> Interests:
    """What the caller and their city follow, the caller's saved filters, and the cities
    whose crisis asks reach the caller's city (its close peers; a crisis with a hazard the
    city follows matches that follow)."""
    followed = await follows_of(db=db, actor=actor)
    values: dict[FollowKind, set[str]] = {kind: set() for kind in FollowKind}
    for item in followed:
        values[item.kind].add(item.value)
    return Interests(
        cities=frozenset(values[FollowKind.CITY]),
        hazards=frozenset(Hazard(h) for h in values[FollowKind.HAZARD]),
        sectors=frozenset(Sector(s) for s in values[FollowKind.SECTOR]),
        tags=frozenset(values[FollowKind.TAG]),
        threads=frozenset(values[FollowKind.PROBLEM] | values[FollowKind.SOLUTION]),
        filters=tuple(f.event_filter for f in await saved_filters.of(db=db, actor=actor)),
        crises_of=await crisis_alerts.close_peers(db, actor.city),
    )


async def feed(*, db: Database, actor: Principal, request: PageRequest) -> Page[Event]:
    """Events about anything the caller or their city follows or the caller's saved filters
    select, oldest first."""
    actor.require(Scope.READ)
    query = events.interests_query(await interests(db=db, actor=actor))
    return await events.event_page(db, query, request, viewer=Viewer.of(actor))


async def live(
    *, db: Database, hub: Hub, actor: Principal, after: str | None
) -> AsyncGenerator[Event]:
    """The feed's events live, after `after` from the log first (services/events.follow).
    What is followed is read when the subscription starts: a follow or a saved filter made
    later counts from the next subscription (which resumes by cursor, missing nothing)."""
    actor.require(Scope.READ)
    chosen = await interests(db=db, actor=actor)
    async for event in events.follow(db=db, hub=hub, actor=actor, event_filter=chosen, after=after):
        yield event
