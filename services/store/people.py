"""`people`, as the authorization server and the realm admin use it: credentials, roles,
invitations and revocation, through the synchronous client (authlib's core and the CLI are
synchronous); and the profile side of the same documents, as the services read and write it
(asynchronous): the one module that speaks to `people`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import Affiliation, OrganisationRole, Person, PublicContact
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.unavailable import guarded_sync
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role, Sector

COLLECTION = "people"
SyncDb = SyncDatabase[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Credentials:
    person_id: str
    city: str
    username: str
    password_hash: str | None
    revoked_at: datetime | None
    role: str = "member"


@guarded_sync
def credentials(db: SyncDb, city: str, username: str) -> Credentials | None:
    doc = db[COLLECTION].find_one({"city": city, "username": username})
    if doc is None:
        return None
    return Credentials(
        str(doc["_id"]),
        city,
        username,
        doc.get("passwordHash"),
        doc.get("revokedAt"),
        str(doc.get("role", "member")),
    )


@guarded_sync
def set_password(db: SyncDb, city: str, username: str, password_hash: str) -> bool:
    result = db[COLLECTION].update_one(
        {"city": city, "username": username}, {"$set": {"passwordHash": password_hash}}
    )
    return result.matched_count == 1


@guarded_sync
def replace_password_hash(db: SyncDb, city: str, person_id: str, old: str, new: str) -> bool:
    """Rehash (e.g. scrypt to argon2id) unless the password changed meanwhile."""
    result = db[COLLECTION].update_one(
        {"_id": object_id(person_id), "city": city, "passwordHash": old},
        {"$set": {"passwordHash": new}},
    )
    return result.modified_count == 1


@guarded_sync
def mark_revoked(db: SyncDb, city: str, person_id: str, *, at: datetime) -> None:
    """No more sign-in, refresh or token for this person."""
    db[COLLECTION].update_one(
        {"_id": object_id(person_id), "city": city}, {"$set": {"revokedAt": at}}
    )


@guarded_sync
def set_invitation(
    db: SyncDb, city: str, username: str, code_hash: str, *, expires_at: datetime
) -> bool:
    result = db[COLLECTION].update_one(
        {"city": city, "username": username},
        {"$set": {"invitation": {"hash": code_hash, "expiresAt": expires_at}}},
    )
    return result.matched_count == 1


@guarded_sync
def accept_invitation(
    db: SyncDb, city: str, username: str, code_hash: str, password_hash: str
) -> bool:
    """Set the password and use the invitation up, in one atomic update."""
    result = db[COLLECTION].update_one(
        {
            "city": city,
            "username": username,
            "invitation.hash": code_hash,
            "invitation.expiresAt": {"$gt": now()},
            "revokedAt": None,
        },
        {"$set": {"passwordHash": password_hash}, "$unset": {"invitation": ""}},
    )
    return result.modified_count == 1


@guarded_sync
def role(db: SyncDb, city: str, person_id: str) -> str | None:
    """The person's current role; None when revoked, gone or of another city."""
    oid = object_id(person_id)
    if oid is None:
        return None
    doc = db[COLLECTION].find_one({"_id": oid, "city": city}, {"revokedAt": 1, "role": 1})
    if doc is None or doc.get("revokedAt") is not None:
        return None
    return str(doc.get("role", "member"))


def contact_doc(contact: PublicContact | None) -> Document | None:
    if contact is None:
        return None
    return {"email": contact.email, "url": contact.url, "phone": contact.phone}


def contact_of(doc: Document | None) -> PublicContact | None:
    if not doc:
        return None
    return PublicContact(email=doc.get("email"), url=doc.get("url"), phone=doc.get("phone"))


def _person_doc(person: Person) -> Document:
    role = person.organisation_role
    return {
        "city": person.city,
        "username": person.username,
        "name": person.name,
        "role": person.role.value,
        # The free-text affiliation keeps its stored name, "organisation".
        "organisation": {"name": person.affiliation.name, "kind": person.affiliation.kind.value},
        "title": person.title,
        "organisationId": object_id(person.organisation_id) if person.organisation_id else None,
        "organisationRole": role.value if role else None,
        "listedAsExpert": person.listed_as_expert,
        "hazards": [h.value for h in person.hazards],
        "sectors": [s.value for s in person.sectors],
        "contact": contact_doc(person.contact),
    }


def _person(doc: Document) -> Person:
    organisation_id = doc.get("organisationId")
    role = doc.get("organisationRole")
    return Person(
        id=str(doc["_id"]),
        city=doc["city"],
        username=doc["username"],
        name=doc["name"],
        role=Role(doc["role"]),
        affiliation=Affiliation(
            name=doc["organisation"]["name"],
            kind=OrganisationKind(doc["organisation"]["kind"]),
        ),
        title=doc.get("title"),
        organisation_id=str(organisation_id) if organisation_id else None,
        organisation_role=OrganisationRole(role) if role and organisation_id else None,
        listed_as_expert=bool(doc.get("listedAsExpert", False)),
        hazards=tuple(Hazard(h) for h in doc.get("hazards") or ()),
        sectors=tuple(Sector(s) for s in doc.get("sectors") or ()),
        contact=contact_of(doc.get("contact")),
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
async def active_person(db: Database, *, city: str, id: str) -> Person | None:
    """The person `id` of `city`, unless their access was revoked."""
    oid = object_id(id)
    if oid is None:
        return None
    doc = await db.people.find_one({"_id": oid, "city": city, "revokedAt": None})
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


@guarded_sync
def membership(db: SyncDb, city: str, person_id: str) -> tuple[str | None, OrganisationRole | None]:
    """The organisation a person of `city` belongs to and their role in it, (None, None)
    when unbound, revoked or not a person of `city` (for the authorization server)."""
    oid = object_id(person_id)
    if oid is None:
        return None, None
    doc = db[COLLECTION].find_one(
        {"_id": oid, "city": city, "revokedAt": None},
        {"organisationId": 1, "organisationRole": 1},
    )
    if doc is None or not doc.get("organisationId"):
        return None, None
    role = doc.get("organisationRole")
    return str(doc["organisationId"]), OrganisationRole(role) if role else None


async def people_of_organisations(
    db: Database, organisation_ids: Sequence[str], *, first: int, after: str | None
) -> ChildPages[Person]:
    """A page of people for each of many organisations, in one round trip."""
    return await child_pages(
        db.people,
        parent_field="organisationId",
        parents=object_ids(list(organisation_ids)),
        match=None,
        field="_id",
        descending=False,
        order="ORGANISATION_PERSON",
        first=first,
        after=after,
        to_model=_person,
        parse_id=object_id,
    )


@guarded
async def set_organisation(
    db: Database, *, person_id: str, organisation_id: str | None, role: OrganisationRole | None
) -> Person | None:
    """Bind a person to an organisation with a role (or unbind them: both None)."""
    doc = await db.people.find_one_and_update(
        {"_id": object_id(person_id)},
        {
            "$set": {
                "organisationId": object_id(organisation_id) if organisation_id else None,
                "organisationRole": role.value if role else None,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    return _person(doc) if doc else None


@guarded
async def save_profile(db: Database, person: Person) -> Person | None:
    """Write what a person says about themselves for `experts`."""
    doc = await db.people.find_one_and_update(
        {"_id": object_id(person.id), "city": person.city},
        {
            "$set": {
                "listedAsExpert": person.listed_as_expert,
                "hazards": [h.value for h in person.hazards],
                "sectors": [s.value for s in person.sectors],
                "contact": contact_doc(person.contact),
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    return _person(doc) if doc else None


def working_on(hazards: Sequence[Hazard], sectors: Sequence[Sector]) -> Document:
    """Who works on any of `hazards` and any of `sectors` (an empty list: any)."""
    match: Document = {}
    if hazards:
        match["hazards"] = {"$in": [h.value for h in hazards]}
    if sectors:
        match["sectors"] = {"$in": [s.value for s in sectors]}
    return match


def past(after_id: str | None) -> Document:
    """What comes after the id of a cursor's item, in id order (experts page by id)."""
    if after_id is None:
        return {}
    oid = object_id(after_id)
    if oid is None:
        raise InvalidInput("after", "is not a cursor returned by this API")
    return {"_id": {"$gt": oid}}


_LISTED: Document = {"listedAsExpert": True}


@guarded
async def experts(
    db: Database,
    *,
    hazards: Sequence[Hazard],
    sectors: Sequence[Sector],
    after_id: str | None,
    limit: int,
) -> list[Person]:
    """People who agreed to be listed and work on what is asked, by id past `after_id`, at
    most `limit`."""
    if limit <= 0:  # MongoDB reads limit(0) as no limit
        return []
    match: Document = {**_LISTED, **working_on(hazards, sectors), **past(after_id)}
    found = await db.people.find(match).sort("_id", 1).limit(limit).to_list(limit)
    return [_person(doc) for doc in found]


@guarded
async def count_experts(
    db: Database, *, hazards: Sequence[Hazard], sectors: Sequence[Sector]
) -> int:
    return await db.people.count_documents({**_LISTED, **working_on(hazards, sectors)})


@guarded
async def unbound_people(db: Database) -> list[Person]:
    """Every person not bound to an organisation (`cityexchange migrate`)."""
    return [_person(doc) async for doc in db.people.find({"organisationId": None}).sort("_id", 1)]


@guarded
async def has_admin(db: Database, organisation_id: str) -> bool:
    """Whether anyone is bound to the organisation as its ADMIN (read on its index)."""
    cursor = db.people.find({"organisationId": object_id(organisation_id)}, {"organisationRole": 1})
    return any([doc.get("organisationRole") == "ADMIN" async for doc in cursor])
