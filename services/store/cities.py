"""Cities and their people in MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.errors import InvalidInput, NotFound
from services.models import City, Contact, GeoPoint, Organisation, Person, ResilienceProfile
from services.pages import ChildPages, Page, PageRequest
from services.store.database import Database, Document, guarded, object_id, object_ids
from services.store.grouped import child_pages
from services.store.paging import find_page
from services.taxonomy import Hazard, OrganisationKind, Role


def _contact_doc(contact: Contact | None) -> Document | None:
    if contact is None:
        return None
    return {"name": contact.name, "email": contact.email, "url": contact.url}


def contact_from_doc(doc: Document | None) -> Contact | None:
    if not doc:
        return None
    return Contact(name=doc.get("name"), email=doc.get("email"), url=doc.get("url"))


def _city_doc(city: City) -> Document:
    location = None
    if city.location is not None:
        location = {
            "type": "Point",
            "coordinates": [city.location.longitude, city.location.latitude],
        }
    return {
        "_id": city.slug,
        "name": city.name,
        "country": city.country,
        "region": city.region,
        "population": city.population,
        "location": location,
        "timezone": city.timezone,
        "languages": list(city.languages),
        "climateZone": city.climate_zone,
        "profile": {
            "hazards": [h.value for h in city.profile.hazards],
            "strategy": city.profile.strategy,
            "strategyYear": city.profile.strategy_year,
        },
        "contact": _contact_doc(city.contact),
        "networks": list(city.networks),
        "createdAt": city.created_at,
    }


def _city(doc: Document) -> City:
    location = doc.get("location")
    profile: dict[str, Any] = doc.get("profile") or {}
    return City(
        slug=doc["_id"],
        name=doc["name"],
        country=doc["country"],
        created_at=doc["createdAt"],
        region=doc.get("region"),
        population=doc.get("population"),
        location=GeoPoint(*location["coordinates"]) if location else None,
        timezone=doc.get("timezone"),
        languages=tuple(doc.get("languages") or ()),
        climate_zone=doc.get("climateZone"),
        profile=ResilienceProfile(
            hazards=tuple(Hazard(h) for h in profile.get("hazards") or ()),
            strategy=profile.get("strategy"),
            strategy_year=profile.get("strategyYear"),
        ),
        contact=contact_from_doc(doc.get("contact")),
        networks=tuple(doc.get("networks") or ()),
    )


@guarded
async def insert_city(db: Database, city: City) -> City:
    try:
        await db.cities.insert_one(_city_doc(city))
    except DuplicateKeyError:
        raise InvalidInput("slug", f"a city '{city.slug}' is already registered") from None
    return city


@guarded
async def cities_by_slugs(db: Database, slugs: Sequence[str]) -> list[City | None]:
    """Cities aligned to `slugs` (None where missing), in one round trip."""
    wanted = list(dict.fromkeys(slugs))
    by_slug = {
        doc["_id"]: _city(doc)
        async for doc in db.cities.find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
    }
    return [by_slug.get(slug) for slug in slugs]


@guarded
async def get_city(db: Database, slug: str) -> City:
    doc = await db.cities.find_one({"_id": slug})
    if doc is None:
        raise NotFound("City", slug)
    return _city(doc)


async def list_cities(db: Database, *, request: PageRequest) -> Page[City]:
    return await find_page(
        db.cities,
        query={},
        field="_id",
        descending=False,
        order="SLUG",
        request=request,
        to_model=_city,
        parse_id=lambda text: text,
    )


def _person_doc(person: Person) -> Document:
    return {
        "city": person.city,
        "username": person.username,
        "name": person.name,
        "role": person.role.value,
        "organisation": {"name": person.organisation.name, "kind": person.organisation.kind.value},
        "title": person.title,
    }


def _person(doc: Document) -> Person:
    return Person(
        id=str(doc["_id"]),
        city=doc["city"],
        username=doc["username"],
        name=doc["name"],
        role=Role(doc["role"]),
        organisation=Organisation(
            name=doc["organisation"]["name"],
            kind=OrganisationKind(doc["organisation"]["kind"]),
        ),
        title=doc.get("title"),
    )


@guarded
async def insert_person(db: Database, person: Person) -> Person:
    try:
        result = await db.people.insert_one(_person_doc(person))
    except DuplicateKeyError:
        raise InvalidInput(
            "username", f"{person.city} already has a person '{person.username}'"
        ) from None
    return replace(person, id=str(result.inserted_id))


@guarded
async def people_by_ids(db: Database, ids: Sequence[str]) -> list[Person | None]:
    """People aligned to `ids`, in one round trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _person(doc)
        async for doc in db.people.find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
    }
    return [by_id.get(id_) for id_ in ids]


@guarded
async def person_in_city(db: Database, *, city: str, id: str) -> Person | None:
    oid = object_id(id)
    if oid is None:
        return None
    doc = await db.people.find_one({"_id": oid, "city": city})
    return _person(doc) if doc else None


@guarded
async def person_by_username(db: Database, *, city: str, username: str) -> Person | None:
    doc = await db.people.find_one({"city": city, "username": username})
    return _person(doc) if doc else None


async def people_of_cities(
    db: Database, cities: Sequence[str], *, first: int, after: str | None
) -> ChildPages[Person]:
    """A page of people for each of many cities, in one round trip."""
    return await child_pages(
        db.people, parent_field="city", parents=list(cities), match=None, field="_id",
        descending=False, order="PERSON", first=first, after=after, to_model=_person,
        parse_id=object_id,
    )  # fmt: skip
