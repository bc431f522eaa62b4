"""Finding people who know: organisations of any city and the people who agreed to be listed,
by the hazards and sectors they work on; and what a person says about themselves for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cityexchange.services import limits
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.models import Organisation, Person, PublicContact
from cityexchange.services.organisations import checked_contact
from cityexchange.services.pages import Cursor, Page, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import organisations as organisation_store
from cityexchange.services.store import people as people_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, Sector

Expert = Organisation | Person
ORDER = "EXPERTS"  # organisations by id, then people by id
_ORGANISATION, _PERSON = "Organisation", "Person"


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """What a person changes about themselves; None leaves a field as it is."""

    listed_as_expert: bool | None = None
    hazards: Sequence[Hazard] | None = None
    sectors: Sequence[Sector] | None = None
    contact: PublicContact | None = None


async def experts(
    *,
    db: Database,
    actor: Principal,
    hazards: Sequence[Hazard] | None,
    sectors: Sequence[Sector] | None,
    request: PageRequest,
) -> Page[Expert]:
    """Who works on any of `hazards` and any of `sectors` (none given: anything), in every
    city: organisations first, then the people who agreed to be listed; forward pages."""
    actor.require(Scope.READ)
    request.validate()
    if request.backward:
        raise InvalidInput("last", "experts page forward only: use first and after")
    wanted_hazards = limits.items("hazards", hazards)
    wanted_sectors = limits.items("sectors", sectors)
    kind, after_id = _position(request.after)
    size = request.size
    found: list[Expert] = []
    if kind != _PERSON:
        found += await organisation_store.experts(
            db, hazards=wanted_hazards, sectors=wanted_sectors, after_id=after_id, limit=size + 1
        )
    if len(found) <= size:
        found += await people_store.experts(
            db,
            hazards=wanted_hazards,
            sectors=wanted_sectors,
            after_id=after_id if kind == _PERSON else None,
            limit=size + 1 - len(found),
        )
    shown = found[:size]

    async def count() -> int:
        return await organisation_store.count_experts(
            db, hazards=wanted_hazards, sectors=wanted_sectors
        ) + await people_store.count_experts(db, hazards=wanted_hazards, sectors=wanted_sectors)

    return Page(
        items=shown,
        cursors=[Cursor(ORDER, _kind(item), item.id).encode() for item in shown],
        has_next_page=len(found) > size,
        has_previous_page=request.after is not None,
        count=count,
    )


def _kind(item: Expert) -> str:
    return _ORGANISATION if isinstance(item, Organisation) else _PERSON


def _position(after: str | None) -> tuple[str | None, str | None]:
    if after is None:
        return None, None
    cursor = Cursor.decode(after, field="after", order=ORDER)
    if cursor.value not in (_ORGANISATION, _PERSON):
        raise InvalidInput("after", "is not a cursor returned by this API")
    return str(cursor.value), cursor.id


async def update_profile(*, db: Database, actor: Principal, changes: ProfileChanges) -> Person:
    """The caller, a person, says whether to be listed as an expert and on what."""
    actor.require(Scope.PUBLISH)
    person = await people_store.person_in_city(db, city=actor.city, id=actor.subject)
    if person is None:
        raise NotFound("Person", actor.subject)
    c = changes
    edited = replace(
        person,
        listed_as_expert=person.listed_as_expert
        if c.listed_as_expert is None
        else c.listed_as_expert,
        hazards=person.hazards if c.hazards is None else limits.items("hazards", c.hazards),
        sectors=person.sectors if c.sectors is None else limits.items("sectors", c.sectors),
        contact=person.contact if c.contact is None else checked_contact("contact", c.contact),
    )
    saved = await people_store.save_profile(db, edited)
    if saved is None:
        raise NotFound("Person", actor.subject)
    return saved
