"""Follows: a person keeps track of cities, hazards, tags, problems and solutions; their feed
is the events of what they follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services import limits
from services.clock import now
from services.errors import InvalidInput
from services.events import event_page
from services.models import Event
from services.pages import Page, PageRequest
from services.principal import Principal, Scope
from services.store import events as event_store
from services.store import follows as store
from services.store.database import Database
from services.taxonomy import Hazard

MAX_FOLLOWS = 200


class FollowKind(StrEnum):
    CITY = "CITY"
    HAZARD = "HAZARD"
    TAG = "TAG"
    PROBLEM = "PROBLEM"
    SOLUTION = "SOLUTION"


@dataclass(frozen=True, slots=True)
class Follow:
    kind: FollowKind
    value: str  # a city slug, a hazard, a tag, or a problem's or solution's id
    since: datetime


def _checked(kind: FollowKind, value: str) -> str:
    value = limits.text("value", value, max_length=100)
    if kind is FollowKind.HAZARD and value not in Hazard.__members__:
        raise InvalidInput("value", "is not a hazard")
    return value.lower() if kind is FollowKind.TAG else value


async def follow(*, db: Database, actor: Principal, kind: FollowKind, value: str) -> list[Follow]:
    """Follow something (idempotent); the caller's follows afterwards."""
    actor.require(Scope.READ)
    checked = _checked(kind, value)
    if await store.count(db, city=actor.city, subject=actor.subject) >= MAX_FOLLOWS:
        raise InvalidInput("value", f"you follow {MAX_FOLLOWS} things already")
    await store.add(
        db, city=actor.city, subject=actor.subject, kind=kind.value, value=checked, at=now()
    )
    return await follows_of(db=db, actor=actor)


async def unfollow(*, db: Database, actor: Principal, kind: FollowKind, value: str) -> list[Follow]:
    actor.require(Scope.READ)
    await store.remove(
        db, city=actor.city, subject=actor.subject, kind=kind.value, value=_checked(kind, value)
    )
    return await follows_of(db=db, actor=actor)


async def follows_of(*, db: Database, actor: Principal) -> list[Follow]:
    actor.require(Scope.READ)
    found = await store.of(db, city=actor.city, subject=actor.subject)
    return [Follow(FollowKind(kind), value, since) for kind, value, since in found]


async def feed(*, db: Database, actor: Principal, request: PageRequest) -> Page[Event]:
    """Events about anything the caller follows, oldest first."""
    actor.require(Scope.READ)
    followed = await follows_of(db=db, actor=actor)
    values: dict[FollowKind, list[str]] = {kind: [] for kind in FollowKind}
    for item in followed:
        values[item.kind].append(item.value)
    query = event_store.any_of(
        cities=values[FollowKind.CITY], hazards=values[FollowKind.HAZARD],
        tags=values[FollowKind.TAG],
        threads=values[FollowKind.PROBLEM] + values[FollowKind.SOLUTION],
    )  # fmt: skip
    return await event_page(db, query, request)
