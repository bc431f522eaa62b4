"""Saved filters: a person names an EventFilter ("floods in the delta, active crises") and it
drives their live events (`viewerEvents`) and their feed beside what they follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cityexchange.services import limits
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.models import EventFilter
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import bounds
from cityexchange.services.store import saved_filters as store
from cityexchange.services.store.database import Database

MAX_SAVED_FILTERS = 20  # per person
NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class SavedFilter:
    name: str
    event_filter: EventFilter
    created_at: datetime
    updated_at: datetime
    thread_kind: str = "Problem"  # what its thread is, if it names one: Problem or Solution


def _name(name: str) -> str:
    return limits.text("name", name, max_length=NAME_MAX)


async def save(
    *,
    db: Database,
    actor: Principal,
    name: str,
    event_filter: EventFilter,
    thread_kind: str = "Problem",
) -> SavedFilter:
    """Save `event_filter` as `name` (scope: read), replacing the caller's filter of that name."""
    actor.require(Scope.READ)
    name, checked = _name(name), event_filter.checked()
    owner = {"city": actor.city, "subject": actor.subject}
    bound = f"saved-filters:{actor.city}:{actor.subject}"
    moment = now()

    async def write(session: Any) -> datetime:
        await bounds.hold(db, bound, session=session)
        if not await store.exists(db, **owner, name=name, session=session) and (
            await store.count(db, **owner, session=session) >= MAX_SAVED_FILTERS
        ):
            raise InvalidInput("name", f"you have {MAX_SAVED_FILTERS} saved filters already")
        return await store.save(
            db,
            **owner,
            name=name,
            event_filter=checked,
            thread_kind=thread_kind,
            at=moment,
            session=session,
        )

    await bounds.prepare(db, bound)
    created = await db.in_transaction(write)
    return SavedFilter(name, checked, created, moment, thread_kind)


async def delete(*, db: Database, actor: Principal, name: str) -> None:
    actor.require(Scope.READ)
    if not await store.delete(db, city=actor.city, subject=actor.subject, name=_name(name)):
        raise NotFound("SavedFilter", name)


async def named(*, db: Database, actor: Principal, name: str) -> SavedFilter:
    """The caller's filter `name`; NotFound if they saved none by that name."""
    actor.require(Scope.READ)
    name = _name(name)
    found = await store.get(db, city=actor.city, subject=actor.subject, name=name)
    if found is None:
        raise NotFound("SavedFilter", name)
    return SavedFilter(*found)


async def of(*, db: Database, actor: Principal) -> list[SavedFilter]:
    """The caller's saved filters, by name."""
    actor.require(Scope.READ)
    found = await store.of(db, city=actor.city, subject=actor.subject, limit=MAX_SAVED_FILTERS)
    return [SavedFilter(*row) for row in found]
