"""Organisations in MongoDB: documents <-> models, versioned updates, batch gets, and the
synchronous look-up the authorization server needs to bind a client to one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from cityexchange.services.errors import Conflict, InvalidInput, NotFound
from cityexchange.services.models import Organisation, OrganisationDraft
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.people import contact_doc, contact_of, past, working_on
from cityexchange.services.store.unavailable import guarded_sync
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Sector

COLLECTION = "organisations"
ORDER = "ORGANISATION_NAME"  # a city's organisations list by name, then id


def name_key(name: str) -> str:
    """What makes two names the same organisation within a city: case and spacing aside."""
    return " ".join(name.casefold().split())


def _described(draft: OrganisationDraft | Organisation) -> Document:
    return {
        "city": draft.city,
        "name": draft.name,
        "nameKey": name_key(draft.name),
        "kind": draft.kind.value,
        "sectors": [s.value for s in draft.sectors],
        "hazards": [h.value for h in draft.hazards],
        "description": draft.description,
        "contact": contact_doc(draft.contact),
    }


def _organisation(doc: Document) -> Organisation:
    return Organisation(
        id=str(doc["_id"]),
        city=doc.get("city"),
        name=doc["name"],
        kind=OrganisationKind(doc["kind"]),
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
        version=int(doc["version"]),
        sectors=tuple(Sector(s) for s in doc.get("sectors") or ()),
        hazards=tuple(Hazard(h) for h in doc.get("hazards") or ()),
        description=doc.get("description"),
        contact=contact_of(doc.get("contact")),
    )


def _taken(draft: OrganisationDraft | Organisation) -> InvalidInput:
    where = draft.city or "the international organisations"
    return InvalidInput("name", f"{where} already has an organisation named {draft.name!r}")


@guarded
async def insert_organisation(
    db: Database, draft: OrganisationDraft, *, at: datetime
) -> Organisation:
    doc = {**_described(draft), "createdAt": at, "updatedAt": at, "version": 1}
    try:
        result = await db.db[COLLECTION].insert_one(doc)
    except DuplicateKeyError:
        raise _taken(draft) from None
    return _organisation({**doc, "_id": result.inserted_id})


@guarded
async def get_organisation(db: Database, id: str) -> Organisation:
    oid = object_id(id)
    doc = await db.db[COLLECTION].find_one({"_id": oid}) if oid else None
    if doc is None:
        raise NotFound("Organisation", id)
    return _organisation(doc)


@guarded
async def organisations_by_ids(db: Database, ids: Sequence[str]) -> list[Organisation | None]:
    """Organisations aligned to `ids`, in one round trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    found = db.db[COLLECTION].find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
    by_id = {str(doc["_id"]): _organisation(doc) async for doc in found}
    return [by_id.get(id_) for id_ in ids]


@guarded
async def save_organisation(
    db: Database, organisation: Organisation, *, expected_version: int
) -> Organisation:
    """Write the editable fields if the stored version is still `expected_version`."""
    oid = object_id(organisation.id)
    try:
        doc = await db.db[COLLECTION].find_one_and_update(
            {"_id": oid, "version": expected_version},
            {
                "$set": {**_described(organisation), "updatedAt": organisation.updated_at},
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        raise _taken(organisation) from None
    if doc is not None:
        return _organisation(doc)
    current = await db.db[COLLECTION].find_one({"_id": oid}, {"version": 1})
    if current is None:
        raise NotFound("Organisation", organisation.id)
    raise Conflict(
        "Organisation", organisation.id, expected=expected_version, actual=current["version"]
    )


async def organisations_of_cities(
    db: Database, cities: Sequence[str], *, first: int, after: str | None
) -> ChildPages[Organisation]:
    """A page of organisations for each of many cities, by name, in one round trip."""
    return await child_pages(
        db.db[COLLECTION],
        parent_field="city",
        parents=list(cities),
        match=None,
        field="nameKey",
        descending=False,
        order=ORDER,
        first=first,
        after=after,
        to_model=_organisation,
        parse_id=object_id,
    )


@guarded
async def experts(
    db: Database,
    *,
    hazards: Sequence[Hazard],
    sectors: Sequence[Sector],
    after_id: str | None,
    limit: int,
) -> list[Organisation]:
    """Organisations of any city working on what is asked, by id past `after_id`, at most
    `limit`."""
    if limit <= 0:  # MongoDB reads limit(0) as no limit
        return []
    match = {**working_on(hazards, sectors), **past(after_id)}
    found = await db.db[COLLECTION].find(match).sort("_id", 1).limit(limit).to_list(limit)
    return [_organisation(doc) for doc in found]


@guarded
async def count_experts(
    db: Database, *, hazards: Sequence[Hazard], sectors: Sequence[Sector]
) -> int:
    return await db.db[COLLECTION].count_documents(working_on(hazards, sectors))


@guarded
async def found_or_added(
    db: Database, draft: OrganisationDraft, *, at: datetime
) -> tuple[str, bool]:
    """The id of the organisation of `draft`'s city and name, added if there is none; and
    whether it was added. Idempotent: the unique (city, name) index decides a race."""
    key = {"city": draft.city, "nameKey": name_key(draft.name)}
    created = {**_described(draft), "createdAt": at, "updatedAt": at, "version": 1}
    try:
        result = await db.db[COLLECTION].update_one(key, {"$setOnInsert": created}, upsert=True)
    except DuplicateKeyError:  # added by someone else between the match and the insert
        result = None
    if result is not None and result.upserted_id is not None:
        return str(result.upserted_id), True
    doc = await db.db[COLLECTION].find_one(key, {"_id": 1})
    if doc is None:
        raise NotFound("Organisation", f"{draft.city}/{draft.name}")
    return str(doc["_id"]), False


@guarded_sync
def city_of(db: SyncDatabase[dict[str, Any]], id: str) -> tuple[bool, str | None]:
    """Whether the organisation exists and its city (None: international)."""
    oid = object_id(id)
    doc = db[COLLECTION].find_one({"_id": oid}, {"city": 1}) if oid else None
    return (doc is not None, doc.get("city") if doc else None)
