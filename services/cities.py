"""Use cases for member cities and their people."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from cityexchange.services import limits
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import City, Person
from cityexchange.services.pages import ChildPages, Page, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import cities as store
from cityexchange.services.store import people as people_store
from cityexchange.services.store.database import Database

_COUNTRY = re.compile(r"^[A-Z]{2}$")


async def add_city(*, db: Database, city: City) -> City:
    """Register a member city (an operator action: the city becomes an OAuth realm)."""
    limits.slug("slug", city.slug)
    if not _COUNTRY.match(city.country):
        raise InvalidInput("country", "must be an ISO 3166-1 alpha-2 code such as 'NL'")
    limits.non_negative("population", city.population)
    checked = replace(
        city,
        name=limits.text("name", city.name, max_length=limits.SHORT_TEXT_MAX),
        # Lower case, as ISO 639 codes are written and as every comparison reads them.
        languages=tuple(code.lower() for code in limits.texts("languages", city.languages)),
        networks=limits.texts("networks", city.networks),
        rivers=limits.texts("rivers", city.rivers),
        created_at=now(),
    )
    return await store.insert_city(db, checked)


async def add_person(*, db: Database, person: Person) -> Person:
    """Add a person to a city (an operator or city-admin action)."""
    await store.get_city(db, person.city)
    checked = replace(
        person,
        username=limits.text("username", person.username, max_length=100),
        name=limits.text("name", person.name, max_length=limits.SHORT_TEXT_MAX),
    )
    return await people_store.insert_person(db, checked)


async def get(*, db: Database, actor: Principal, slug: str) -> City:
    actor.require(Scope.READ)
    return await store.get_city(db, slug)


async def by_slugs(*, db: Database, actor: Principal, slugs: Sequence[str]) -> list[City | None]:
    actor.require(Scope.READ)
    return await store.cities_by_slugs(db, slugs)


async def list_cities(*, db: Database, actor: Principal, request: PageRequest) -> Page[City]:
    actor.require(Scope.READ)
    return await store.list_cities(db, request=request)


async def people_by_ids(
    *, db: Database, actor: Principal, ids: Sequence[str]
) -> list[Person | None]:
    actor.require(Scope.READ)
    return await people_store.people_by_ids(db, ids)


async def people_of(
    *, db: Database, actor: Principal, cities: Sequence[str], request: PageRequest
) -> ChildPages[Person]:
    """People of each of many cities, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await people_store.people_of_cities(db, cities, first=request.size, after=request.after)


async def person_of_principal(*, db: Database, actor: Principal) -> Person | None:
    """The person a token speaks for, when its subject is one of its city's people."""
    return await people_store.person_in_city(db, city=actor.city, id=actor.subject)


async def directory(*, db: Database, limit: int) -> list[City]:
    """The member cities by slug, at most `limit`: public, as each city's realm is (the web
    app's sign-in offers them)."""
    return await store.cities_after(db, None, limit=limit)


async def require_city(*, db: Database, slug: str) -> City:
    """A city by slug, for operator tools (no caller to check)."""
    return await store.get_city(db, slug)


async def person_by_username(*, db: Database, city: str, username: str) -> Person | None:
    """A city's person by username, for operator tools."""
    return await people_store.person_by_username(db, city=city, username=username)


async def invite_person(*, db: Database, actor: Principal, person: Person) -> Person:
    """A city admin adds one of its city's people (who then sets a password)."""
    actor.require(Scope.ADMIN)
    return await add_person(db=db, person=replace(person, city=actor.city))
