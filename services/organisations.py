"""Use cases for organisations, a city's many actors: creating and editing them, their people,
and who may manage them.

Who manages an organisation: the admins (scope `admin`) of its city, and its own admins —
people bound to it with the role ADMIN, acting through a token for it (`Principal.
organisation`). An international organisation (no city) is created by any city's admin and
then managed by its own admins only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cityexchange.services import limits
from cityexchange.services.clock import now
from cityexchange.services.errors import Forbidden, InvalidInput, NotFound
from cityexchange.services.models import (
    Organisation,
    OrganisationDraft,
    OrganisationRole,
    Person,
    PublicContact,
)
from cityexchange.services.pages import ChildPages, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import organisations as store
from cityexchange.services.store import people as people_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Sector

DESCRIPTION_MAX = limits.SUMMARY_MAX
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL = re.compile(r"https?://[^\s/]+\S*")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{2,38}")

Membership = tuple[str | None, OrganisationRole | None]
"""The organisation a person is bound to and their role in it."""


@dataclass(frozen=True, slots=True)
class OrganisationChanges:
    """What an edit changes; None leaves a field as it is."""

    name: str | None = None
    kind: OrganisationKind | None = None
    sectors: Sequence[Sector] | None = None
    hazards: Sequence[Hazard] | None = None
    description: str | None = None
    contact: PublicContact | None = None


def checked_contact(field: str, contact: PublicContact | None) -> PublicContact | None:
    """A public contact with each part bounded and well-formed; None when it is empty."""
    if contact is None:
        return None
    email = limits.optional_text((field, "email"), contact.email, max_length=254)
    url = limits.optional_text((field, "url"), contact.url, max_length=limits.SHORT_TEXT_MAX)
    phone = limits.optional_text((field, "phone"), contact.phone, max_length=40)
    for part, value, shape, what in (
        ("email", email, _EMAIL, "an e-mail address"),
        ("url", url, _URL, "an http(s) URL"),
        ("phone", phone, _PHONE, "a phone number (digits, spaces, + ( ) . -)"),
    ):
        if value is not None and not shape.fullmatch(value):
            raise InvalidInput((field, part), f"must be {what}")
    if email is None and url is None and phone is None:
        return None
    return PublicContact(email=email, url=url, phone=phone)


def _checked(draft: OrganisationDraft) -> OrganisationDraft:
    return replace(
        draft,
        name=limits.text("name", draft.name, max_length=limits.SHORT_TEXT_MAX),
        sectors=limits.items("sectors", draft.sectors),
        hazards=limits.items("hazards", draft.hazards),
        description=limits.optional_text(
            "description", draft.description, max_length=DESCRIPTION_MAX
        ),
        contact=checked_contact("contact", draft.contact),
    )


def manages(
    actor: Principal, *, organisation_id: str, city: str | None, membership: Membership
) -> bool:
    """Whether `actor` may edit the organisation and manage its people and clients, given
    the actor's own `membership` (the one rule; auth/admin.py asks it too)."""
    if city is not None and city == actor.city and Scope.ADMIN.value in actor.scopes:
        return True
    return (
        actor.organisation == organisation_id
        and Scope.PUBLISH.value in actor.scopes
        and membership == (organisation_id, OrganisationRole.ADMIN)
    )


async def membership_of(*, db: Database, actor: Principal) -> Membership:
    """The caller's own membership, read now (a role taken away counts at once)."""
    person = await people_store.person_in_city(db, city=actor.city, id=actor.subject)
    if person is None:
        return None, None
    return person.organisation_id, person.organisation_role


async def _require_manager(*, db: Database, actor: Principal, organisation: Organisation) -> None:
    membership = await membership_of(db=db, actor=actor)
    if not manages(
        actor, organisation_id=organisation.id, city=organisation.city, membership=membership
    ):
        whose = (
            f"{organisation.city}'s admins or its own" if organisation.city else "its own admins"
        )
        raise Forbidden(f"only {whose} may change this organisation")


async def add_organisation(*, db: Database, draft: OrganisationDraft) -> Organisation:
    """Add an organisation (an operator action; its city must exist)."""
    if draft.city is not None:
        await city_store.get_city(db, draft.city)
    return await store.insert_organisation(db, _checked(draft), at=now())


async def create(*, db: Database, actor: Principal, draft: OrganisationDraft) -> Organisation:
    """A city's admin adds one of its city's organisations, or an international one."""
    actor.require(Scope.ADMIN)
    if draft.city is not None:
        actor.require_own_city(draft.city, "city's organisations")
    return await store.insert_organisation(db, _checked(draft), at=now())


async def update(
    *, db: Database, actor: Principal, id: str, version: int, changes: OrganisationChanges
) -> Organisation:
    """Edit an organisation from the version last read (CONFLICT otherwise)."""
    actor.require(Scope.READ)
    current = await store.get_organisation(db, id)
    await _require_manager(db=db, actor=actor, organisation=current)
    c = changes
    edited = _checked(
        OrganisationDraft(
            city=current.city,
            name=current.name if c.name is None else c.name,
            kind=c.kind or current.kind,
            sectors=current.sectors if c.sectors is None else tuple(c.sectors),
            hazards=current.hazards if c.hazards is None else tuple(c.hazards),
            description=current.description if c.description is None else c.description,
            contact=current.contact if c.contact is None else c.contact,
        )
    )
    updated = replace(
        current,
        name=edited.name,
        kind=edited.kind,
        sectors=edited.sectors,
        hazards=edited.hazards,
        description=edited.description,
        contact=edited.contact,
        updated_at=now(),
    )
    return await store.save_organisation(db, updated, expected_version=version)


async def get(*, db: Database, actor: Principal, id: str) -> Organisation:
    actor.require(Scope.READ)
    return await store.get_organisation(db, id)


async def by_ids(
    *, db: Database, actor: Principal, ids: Sequence[str]
) -> list[Organisation | None]:
    actor.require(Scope.READ)
    return await store.organisations_by_ids(db, ids)


async def of_cities(
    *, db: Database, actor: Principal, cities: Sequence[str], request: PageRequest
) -> ChildPages[Organisation]:
    """Organisations of each of many cities, by name, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.organisations_of_cities(db, cities, first=request.size, after=request.after)


async def people_of(
    *, db: Database, actor: Principal, organisation_ids: Sequence[str], request: PageRequest
) -> ChildPages[Person]:
    """People of each of many organisations, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await people_store.people_of_organisations(
        db, organisation_ids, first=request.size, after=request.after
    )


async def set_person_organisation(
    *,
    db: Database,
    actor: Principal,
    person_id: str,
    organisation_id: str | None,
    role: OrganisationRole | None,
) -> Person:
    """Bind a person to an organisation with a role (MEMBER unless said), or unbind them.

    A city's admin does this for the city's people; an organisation's admin moves people of
    their own city into and out of their own organisation only. Into an international
    organisation, a city's admin brings someone only while it has no admin yet (its first):
    after that its own admins decide who acts for it, since whoever does holds its team
    memberships in every city (docs/visibility.md)."""
    actor.require(Scope.READ)
    [person] = await people_store.people_by_ids(db, [person_id])
    if person is None:
        raise NotFound("Person", person_id)
    organisation = await store.get_organisation(db, organisation_id) if organisation_id else None
    if organisation is not None and organisation.city not in (None, person.city):
        raise InvalidInput("personId", f"is not a person of {organisation.city}")
    if organisation is None and role is not None:
        raise InvalidInput("role", "goes with an organisationId")
    city_admin = Scope.ADMIN.value in actor.scopes and actor.city == person.city
    if not city_admin:
        mine, my_role = await membership_of(db=db, actor=actor)
        touched = {o for o in (person.organisation_id, organisation_id) if o}
        if (
            mine is None
            or not manages(actor, organisation_id=mine, city=None, membership=(mine, my_role))
            or touched - {mine}
            or person.city != actor.city
        ):
            raise Forbidden("only the city's admins and the organisation's own admins may")
    elif (
        organisation is not None
        and organisation.city is None
        and organisation.id != person.organisation_id
        and await people_store.has_admin(db, organisation.id)
    ):
        mine = await membership_of(db=db, actor=actor)
        if not manages(actor, organisation_id=organisation.id, city=None, membership=mine):
            raise Forbidden(f"only {organisation.name}'s own admins bring people into it")
    bound = await people_store.set_organisation(
        db,
        person_id=person.id,
        organisation_id=organisation.id if organisation else None,
        role=(role or OrganisationRole.MEMBER) if organisation else None,
    )
    if bound is None:
        raise NotFound("Person", person_id)
    return bound


@dataclass(frozen=True, slots=True)
class Migrated:
    organisations_added: int
    people_linked: int
    people_skipped: int  # an affiliation name no organisation may have (blank, too long)


async def migrate_affiliations(*, db: Database) -> Migrated:
    """Turn people's free-text affiliations into organisations, one per (city, name), and
    bind the people to them as members. Idempotent: bound people are left alone, and an
    organisation of the same city and name is found rather than added twice."""
    added = linked = skipped = 0
    for person in await people_store.unbound_people(db):
        try:
            name = limits.text("name", person.affiliation.name, max_length=limits.SHORT_TEXT_MAX)
        except InvalidInput:
            skipped += 1
            continue
        draft = OrganisationDraft(city=person.city, name=name, kind=person.affiliation.kind)
        organisation_id, was_added = await store.found_or_added(db, draft, at=now())
        added += was_added
        await people_store.set_organisation(
            db, person_id=person.id, organisation_id=organisation_id, role=OrganisationRole.MEMBER
        )
        linked += 1
    return Migrated(organisations_added=added, people_linked=linked, people_skipped=skipped)


async def existing(db: Database, field: str, ids: Sequence[str]) -> tuple[str, ...]:
    """`ids` of organisations (a problem's stakeholders, a solution's partners), bounded and
    without repeats; NotFound for the first that does not exist."""
    wanted = limits.items(field, ids)
    found = await store.organisations_by_ids(db, wanted)
    for id_, organisation in zip(wanted, found, strict=True):
        if organisation is None:
            raise NotFound("Organisation", id_)
    return wanted
