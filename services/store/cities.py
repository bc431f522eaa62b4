"""Cities and their people in MongoDB."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from cityexchange.services.case_studies import CityCriteria
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.models import City, Contact, GeoPoint, ResilienceProfile
from cityexchange.services.pages import Page, PageRequest
from cityexchange.services.store.database import Database, Document, guarded
from cityexchange.services.store.paging import find_page
from cityexchange.services.store.unavailable import guarded_sync
from cityexchange.services.taxonomy import Hazard, IncomeGroup


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
        "coastal": city.coastal,
        "rivers": list(city.rivers),
        "incomeGroup": city.income_group.value if city.income_group else None,
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
        coastal=doc.get("coastal"),
        rivers=tuple(doc.get("rivers") or ()),
        income_group=IncomeGroup(income) if (income := doc.get("incomeGroup")) else None,
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


@guarded
async def cities_after(db: Database, after: str | None, *, limit: int) -> list[City]:
    """Up to `limit` cities by slug after `after` (from the first when None): one batch of
    a walk over every member city."""
    query: Document = {"_id": {"$gt": after}} if after is not None else {}
    cursor = db.cities.find(query).sort("_id", 1).limit(limit).batch_size(limit)
    return [_city(doc) async for doc in cursor]


@guarded
async def city_slugs(db: Database) -> frozenset[str]:
    """Every registered city, i.e. every realm (the API's token checks)."""
    return frozenset([doc["_id"] async for doc in db.cities.find({}, {"_id": 1})])


@guarded
async def members_of_networks(db: Database, networks: Sequence[str]) -> dict[str, list[str]]:
    """The member cities of each of `networks` that has any, in one round trip."""
    members: dict[str, list[str]] = {}
    wanted = set(networks)
    found = db.cities.find({"networks": {"$in": list(wanted)}}, {"networks": 1})
    async for doc in found.batch_size(10_000):  # member cities number in the thousands at most
        for network in wanted.intersection(doc.get("networks") or ()):
            members.setdefault(network, []).append(doc["_id"])
    return members


@guarded
async def slugs_of_cities_matching(db: Database, criteria: CityCriteria) -> list[str]:
    """Slugs of the cities that have every attribute `criteria` names, in one round trip."""
    query: Document = {}
    if criteria.climate_zones:
        # A prefix, case-insensitively: "A" is every tropical zone, "cf" matches "Cfb".
        heads = "|".join(re.escape(zone) for zone in criteria.climate_zones)
        query["climateZone"] = {"$regex": f"^(?:{heads})", "$options": "i"}
    population: Document = {}
    if criteria.population_min is not None:
        population["$gte"] = criteria.population_min
    if criteria.population_max is not None:
        population["$lte"] = criteria.population_max
    if population:
        query["population"] = population
    if criteria.coastal is not None:
        query["coastal"] = criteria.coastal  # a city that did not say matches neither
    for field, values in (
        ("region", criteria.regions),
        ("networks", criteria.networks),
        ("languages", criteria.languages),
        ("incomeGroup", [group.value for group in criteria.income_groups]),
    ):
        if values:
            query[field] = {"$in": list(values)}
    # Member cities number in the thousands at most: their slugs fit one batch.
    found = db.cities.find(query, {"_id": 1}).batch_size(10_000)
    return [doc["_id"] async for doc in found]


@guarded_sync
def city_name(db: SyncDatabase[dict[str, Any]], slug: str) -> str | None:
    """The registered city's name through the synchronous client (the realm admin, in the CLI
    and in worker threads); None when there is no such city."""
    doc = db["cities"].find_one({"_id": slug}, {"name": 1})
    return str(doc["name"]) if doc else None
